"""Prometheus metrics of the firmware service, read from it when scraped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from aiolwm2m.firmware.records import CAMPAIGN_STATES, JOB_STATES
from aiolwm2m.firmware.service import FirmwareService


class FirmwareCollector:
    """``lwm2m_firmware_jobs{state}`` and ``lwm2m_firmware_campaigns{state}`` (gauges),
    ``lwm2m_firmware_updates_finished{outcome}``, ``lwm2m_firmware_bytes_served`` and
    ``lwm2m_firmware_blocks_served`` (counters), ``lwm2m_firmware_downloads`` (images on
    offer now)."""

    def __init__(self, firmware: FirmwareService) -> None:
        self.firmware = firmware

    def collect(self) -> Iterator[Metric]:
        fw = self.firmware
        jobs: Counter[str] = Counter()
        campaigns: Counter[str] = Counter()
        for run in fw.runs.values():
            campaigns[run.campaign.state] += 1
            jobs.update(run.counts)
        family = GaugeMetricFamily("lwm2m_firmware_jobs", "Firmware update jobs by state",
                                   labels=["state"])
        for state in JOB_STATES:
            family.add_metric([state], jobs[state])
        yield family
        family = GaugeMetricFamily("lwm2m_firmware_campaigns", "Firmware campaigns by state",
                                   labels=["state"])
        for state in CAMPAIGN_STATES:
            family.add_metric([state], campaigns[state])
        yield family
        counter = CounterMetricFamily("lwm2m_firmware_updates_finished",
                                      "Device firmware updates finished since start",
                                      labels=["outcome"])
        for outcome in ("succeeded", "failed", "cancelled"):
            counter.add_metric([outcome], fw.finished.get(outcome, 0))
        yield counter
        started = fw.started
        yield CounterMetricFamily("lwm2m_firmware_bytes_served",
                                  "Firmware image bytes sent to devices (CoAP and HTTP pull)",
                                  value=fw.deliveries.bytes_served if started else 0)
        yield CounterMetricFamily("lwm2m_firmware_blocks_served",
                                  "Firmware blocks and HTTP ranges sent to devices",
                                  value=fw.deliveries.blocks_served if started else 0)
        yield GaugeMetricFamily("lwm2m_firmware_downloads", "Images on offer to devices now",
                                value=len(fw.deliveries) if started else 0)
