
echoEchoes*1.0b
echoEchoEcho"echo