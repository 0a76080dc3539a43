"""The HTTP reward server: FastAPI app, request gate, micro-batcher, and `serve()`."""
