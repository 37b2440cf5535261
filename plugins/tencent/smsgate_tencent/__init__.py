"""smsgate provider plugin for Tencent Cloud SMS."""
