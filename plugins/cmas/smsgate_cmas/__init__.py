"""smsgate provider plugin for cmas."""
