"""The HTTP surface of PI Web API: time strings, WebIDs, client. Knows nothing about Delta."""
