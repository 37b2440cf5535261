"""smsgate provider plugin for juse."""
