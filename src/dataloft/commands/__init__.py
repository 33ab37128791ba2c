"""The client-side commands of the CLI: upload, search, query, lists, events, chat."""
