"""Byte-reproducible XLSX: fixed document dates and fixed zip entry timestamps.

openpyxl stamps `modified` with the wall clock in `save_workbook` and zip entries with the
current time; we drive its ExcelWriter ourselves with fixed properties, then rewrite the archive
with one fixed timestamp per entry, so reruns with the same inputs give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile

from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter


def workbook_bytes(wb: Workbook, stamp: dt.datetime) -> bytes:
    """Serialise `wb` with created = modified = `stamp` and zip entries dated `stamp`."""
    stamp = stamp.replace(tzinfo=None, microsecond=0)
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.creator = "nonrecours"
    wb.properties.lastModifiedBy = "nonrecours"
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).save()
    out = io.BytesIO()
    date_time = (
        max(stamp.year, 1980),
        stamp.month,
        stamp.day,
        stamp.hour,
        stamp.minute,
        stamp.second - stamp.second % 2,
    )
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=date_time)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()
