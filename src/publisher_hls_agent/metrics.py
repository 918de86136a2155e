"""The worker's Prometheus metrics, in a registry of its own (``/metrics`` serves it)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.active = Gauge("hls_recordings_active", "Recordings writing segments now",
                            registry=self.registry)
        self.jobs_active = Gauge("hls_jobs_active", "Jobs held: a participant followed, "
                                 "recorded or waiting for activation or return",
                                 registry=self.registry)
        self.capacity = Gauge("hls_jobs_capacity", "MAX_RECORDINGS: jobs this worker takes",
                              registry=self.registry)
        self.load = Gauge("hls_worker_load", "The share of the worker's cores its processes "
                          "use (measured) or its newest jobs will (expected), as reported "
                          "to the server; no job is taken past LOAD_THRESHOLD",
                          registry=self.registry)
        self.webhooks = Counter("hls_webhooks_delivered", "Webhook events delivered",
                                registry=self.registry)
        self.webhook_failures = Counter(
            "hls_webhook_failures", "Webhook deliveries that failed and will be tried again",
            registry=self.registry)
        self.webhook_delay = Gauge(
            "hls_webhook_delay_seconds", "How long the last webhook delivered waited",
            registry=self.registry)
        self.cpu = Gauge("hls_worker_cpu_cores", "Cores the worker's processes used over the "
                         "last seconds", registry=self.registry)
        self.segments = Counter("hls_segments_written", "Segments written",
                                registry=self.registry)
        self.bytes = Counter("hls_bytes_written", "Bytes of segments written",
                             registry=self.registry)
        self.keyframe_requests = Counter(
            "hls_keyframe_requests", "Keyframes asked of publishers (PLI) while recording",
            registry=self.registry)
        self.packets_lost = Counter(
            "hls_packets_lost", "RTP packets of recorded tracks that never arrived, even "
            "after NACKs and RED", registry=self.registry)
        self.packets_recovered = Counter(
            "hls_packets_recovered", "RTP packets found missing that NACK/RTX or RED brought "
            "back", registry=self.registry)
        self.video_frames_lost = Counter(
            "hls_video_frames_lost", "Video frames given up for lost or broken packets",
            registry=self.registry)
        self.decrypt_failures = Counter(
            "hls_decrypt_failures", "Frames of end-to-end encrypted tracks that did not "
            "decrypt, dropped (a wrong E2EE_PASSPHRASE makes every frame fail)",
            registry=self.registry)
        self.tracks_missing = Counter(
            "hls_tracks_missing", "Recordings that began without a track, by kind and why",
            ["kind", "reason"], registry=self.registry)
        self.jobs = Counter("hls_jobs", "Jobs ended, by outcome", ["outcome"],
                            registry=self.registry)
        self.upload_failures = Counter("hls_upload_failures", "Failed uploads, by cause",
                                       ["cause"], registry=self.registry)
        self.registered = Gauge("hls_worker_registered",
                                "1 while registered with the LiveKit server",
                                registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
