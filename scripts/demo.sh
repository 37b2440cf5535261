#!/usr/bin/env bash
# Set up a virtualenv with the core and every vendor plugin, then run `smsgate demo`:
# each vendor against its simulator on 127.0.0.1, a send and then its delivery report.
source "$(dirname "$0")/_setup.sh"
install -e ".[serve,metrics]" $(editable plugins/*/)
exec "$VENV/bin/smsgate" demo "$@"
