"""smsgate provider plugin for Alibaba Cloud SMS (阿里云短信服务, Dysmsapi 2017-05-25)."""
