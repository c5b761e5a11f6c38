"""A local stand-in for the Google APIs runctl uses, speaking their real gRPC wire protocol."""
