"""Tornado adapters: the Bayeux transports as RequestHandler / WebSocketHandler classes, for
mounting an endpoint in any Tornado Application (`Endpoint.routes()`)."""
