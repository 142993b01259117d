"""The standalone server's connection layer: HTTP/1.1 (parsed by httptools) and WebSocket
framing (read with wsproto) on Tornado's TCPServer and IOStream. It turns bytes into requests and
messages for the Bayeux transports, and their answers back into bytes."""
