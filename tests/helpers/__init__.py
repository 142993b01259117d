"""What the tests share: HTTP and WebSocket clients for the wire, servers to test against,
Redis processes, and the inputs hostile tests draw from. Test modules import from here, never
from each other."""
