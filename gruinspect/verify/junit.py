"""JUnit XML for ``verify --junit``: one testsuite for PATH, one testcase per cell and check."""
from __future__ import annotations

import socket
from datetime import datetime, timezone

from .report import FAILED, SKIPPED


def to_junit(report) -> str:
    """The report as JUnit XML (what CI systems show as test results)."""
    from xml.etree import ElementTree as ET

    counts = report.counts()
    total = sum(counts.values())
    root = ET.Element("testsuites", name="gruinspect verify", tests=str(total),
                      failures=str(counts[FAILED]), errors="0", skipped=str(counts[SKIPPED]),
                      time=f"{report.seconds:.3f}")
    suite = ET.SubElement(root, "testsuite", name=report.path, tests=str(total), failures=str(counts[FAILED]),
                          errors="0", skipped=str(counts[SKIPPED]), time=f"{report.seconds:.3f}",
                          timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                          hostname=_hostname())
    props = ET.SubElement(suite, "properties")
    properties = {"format": report.format, "oracle": report.oracle,
                  **{k: str(v) for k, v in report.settings.items() if v is not None}, **report.frameworks}
    if report.exported:
        properties["exported"] = report.exported
    for name, value in properties.items():
        ET.SubElement(props, "property", name=str(name), value=str(value))
    for cell, k in report.all_checks:
        case = ET.SubElement(suite, "testcase", classname=cell or report.path, name=k.name,
                             time=f"{k.seconds:.3f}")
        if k.status == FAILED:
            failure = ET.SubElement(case, "failure", message=k.message, type=k.name)
            failure.text = "\n".join([k.message, *k.failures])
        elif k.status == SKIPPED:
            ET.SubElement(case, "skipped", message=k.message)
        else:
            ET.SubElement(case, "system-out").text = k.message
    if report.notes or report.problems:
        ET.SubElement(suite, "system-err").text = "\n".join(report.notes + report.problems)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _hostname() -> str:
    try:
        return socket.gethostname()
    except OSError:  # pragma: no cover
        return "localhost"
