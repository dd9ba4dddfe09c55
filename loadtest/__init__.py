"""`cogcore loadtest`: a bounded streaming load generator for OpenAI-compatible endpoints.

It measures TTFT, TPOT, inter-token latency, end-to-end latency, throughput and goodput as
vLLM's `bench serve` defines them, and writes one JSON + Markdown + PNG report.
"""
