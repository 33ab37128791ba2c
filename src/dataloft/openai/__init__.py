"""The OpenAI-compatible Files and Vector Stores surface (/v1): vector stores are datasets,
files are our files, vector-store files are attachments; shapes as the `openai` SDK reads."""
