"""The default nonce: 32 hex digits from the OS's CSPRNG, drawn in bulk, never the same twice, and
never shared with a forked child (which would otherwise sign with its parent's next nonces)."""

import os

import pytest

from smsgate.provider import default_nonce


def test_nonces_are_32_hex_digits_and_never_repeat():
    nonces = [default_nonce() for _ in range(2000)]  # several draws
    assert len(set(nonces)) == len(nonces)
    assert all(len(n) == 32 and int(n, 16) >= 0 for n in nonces)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_take_its_parents_next_nonces():
    default_nonce()  # a draw is under way: the next ones are waiting in this process
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first three nonces, to the parent
        try:
            os.write(write, "".join(default_nonce() for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode()
    os.close(read)
    mine = "".join(default_nonce() for _ in range(3))
    assert len(child) == 96 and child != mine
