"""The ringfence server: REST API, services over the store, and (later) streams and the controller."""
