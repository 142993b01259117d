"""The sans-I/O Bayeux protocol core: no sockets, no Tornado, no clocks of its own."""
