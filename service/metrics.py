"""Prometheus metrics named after vLLM's, in a registry owned by one app (never the global)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
                   1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)


class Metrics:
    """The engine's observer: queue time, TTFT, inter-token latency, e2e, token counters."""

    def __init__(self, model_name: str) -> None:
        self.registry = CollectorRegistry()
        self.model_name = model_name
        labels = ["model_name"]

        def histogram(name: str, doc: str) -> Histogram:
            return Histogram(f"cogcore:{name}", doc, labels, buckets=LATENCY_BUCKETS,
                             registry=self.registry)

        self.ttft = histogram("time_to_first_token_seconds", "Time to first token.")
        self.itl = histogram("inter_token_latency_seconds", "Time between two output tokens.")
        self.e2e = histogram("e2e_request_latency_seconds", "Request latency, arrival to end.")
        self.queue = histogram("request_queue_time_seconds", "Time waiting for admission.")
        self.prompt_tokens = Counter("cogcore:prompt_tokens", "Prompt tokens of the rows "
                                     "admitted (a request with n choices counts n).",
                                     labels, registry=self.registry)
        self.prefill_tokens = Counter(
            "cogcore:prefill_tokens", "Prompt tokens run through the model: a prefix shared "
            "by rows and the repeated prompt of n choices count once.", labels,
            registry=self.registry)
        self.generation_tokens = Counter("cogcore:generation_tokens", "Generated tokens.",
                                         labels, registry=self.registry)
        self.requests = Counter("cogcore:request_success", "Finished requests by reason.",
                                [*labels, "finished_reason"], registry=self.registry)
        self.running = Gauge("cogcore:num_requests_running", "Requests in the running batch.",
                             labels, registry=self.registry)
        self.waiting = Gauge("cogcore:num_requests_waiting", "Requests waiting for admission.",
                             labels, registry=self.registry)
        self.routes = Counter("cogcore:route_requests", "Requests by route (facts, reasoning).",
                              [*labels, "route"], registry=self.registry)
        self.abstentions = Counter("cogcore:abstentions", "Facts requests answered with the "
                                   "abstention reply.", labels, registry=self.registry)
        self.errors = Counter("cogcore:http_errors", "Responses with a 4xx or 5xx status.",
                              [*labels, "status"], registry=self.registry)
        self.retrieval = histogram("retrieval_latency_seconds",
                                   "Routing and retrieval time of one request.")

    def track(self, running: Callable[[], float], waiting: Callable[[], float]) -> None:
        """Read the running and waiting counts from the engine at scrape time."""
        self.running.labels(self.model_name).set_function(running)
        self.waiting.labels(self.model_name).set_function(waiting)

    def admitted(self, queue_s: float, prompt_tokens: int) -> None:
        """A request left the queue and is prefilled."""
        self.queue.labels(self.model_name).observe(queue_s)
        self.prompt_tokens.labels(self.model_name).inc(prompt_tokens)

    def prefilled(self, tokens: int) -> None:
        """Prompt tokens computed by one prefill (shared prefix included)."""
        self.prefill_tokens.labels(self.model_name).inc(tokens)

    def token(self, since_previous_s: float | None, since_arrival_s: float) -> None:
        """One output token: the first feeds TTFT, the others inter-token latency."""
        self.generation_tokens.labels(self.model_name).inc()
        if since_previous_s is None:
            self.ttft.labels(self.model_name).observe(since_arrival_s)
        else:
            self.itl.labels(self.model_name).observe(since_previous_s)

    def finished(self, e2e_s: float, finish_reason: str) -> None:
        """A request finished (stop or length)."""
        self.e2e.labels(self.model_name).observe(e2e_s)
        self.requests.labels(self.model_name, finish_reason).inc()

    def grounded(self, route: str, abstained: bool, latency_s: float) -> None:
        """A request was routed (and, for facts, retrieved for)."""
        self.routes.labels(self.model_name, route).inc()
        if abstained:
            self.abstentions.labels(self.model_name).inc()
        self.retrieval.labels(self.model_name).observe(latency_s)

    def responded(self, status: int) -> None:
        """An HTTP response went out; errors are counted by status."""
        if status >= 400:
            self.errors.labels(self.model_name, str(status)).inc()
