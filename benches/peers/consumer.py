"""The obvious Python consumer: pymongo's watch() and a dict of Decimals.

What a team would write first: the same server-side filter as power-revenue (fulfilled
inserts and updates), full documents, amounts parsed with `Decimal`. Replays the stream from
a cluster time and stops after N sales; prints one JSON line with its own CPU seconds.

    python consumer.py URI DATABASE START_T START_I N
"""

import json
import resource
import sys
from decimal import Decimal

from bson.decimal128 import Decimal128
from bson.timestamp import Timestamp
from pymongo import MongoClient


def amount_of(value):
    if isinstance(value, str):
        return Decimal(value.replace("₦", "").replace("NGN", "").replace(",", "").strip())
    if isinstance(value, Decimal128):
        return value.to_decimal()
    return Decimal(str(value))


def main():
    uri, database, start_t, start_i, expected = sys.argv[1:6]
    expected = int(expected)
    coll = MongoClient(uri)[database]["power_transaction_items"]
    pipeline = [{"$match": {"$or": [
        {"operationType": {"$in": ["insert", "replace"]}, "fullDocument.status": "fulfilled"},
        {"operationType": "update", "updateDescription.updatedFields.status": "fulfilled"},
    ]}}]
    totals, counts, seen = {}, {}, 0
    start = Timestamp(int(start_t), int(start_i))
    with coll.watch(pipeline, full_document="updateLookup", start_at_operation_time=start) as stream:
        for change in stream:
            doc = change.get("fullDocument") or {}
            utility = str(doc.get("utility") or "UNKNOWN").strip().upper()
            totals[utility] = totals.get(utility, Decimal(0)) + amount_of(doc.get("amount"))
            counts[utility] = counts.get(utility, 0) + 1
            seen += 1
            if seen >= expected:
                break
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "events": seen,
        "cpu_secs": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "revenue": str(sum(totals.values(), Decimal(0)).quantize(Decimal("0.01"))),
    }))


if __name__ == "__main__":
    main()
