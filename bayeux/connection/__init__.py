"""The standalone server's connection layer: HTTP/1.1 (parsed by httptools) and WebSocket
framing (read with wsproto) on asyncio transports (stream.py), on Tornado's IOLoop, with sockets
bound by Tornado's netutil. It turns bytes into requests and messages for the Bayeux
transports, and their answers back into bytes."""
