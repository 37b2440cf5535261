"""smsgate provider plugin for opass."""
