"""smsgate provider plugin for guodu."""
