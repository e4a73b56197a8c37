"""Domain operations. Each flushes but never commits; the request or CLI command is the unit of work."""
