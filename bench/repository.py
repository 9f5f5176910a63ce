"""Repository cost with 100 vs 100,000 records of *another* org in the same table (the calls of each
route are bench.round_trips').

Two measures of a find: the items DynamoDB reads for it (``ScannedCount``, what it bills and what its
latency follows) and the wall-clock time through moto. The first must not change with other tenants'
data. The second does grow here, and that is the emulator: moto answers a Query by walking every item
of the table, where DynamoDB reads only the queried partition.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import boto3

from bench.emulated import emulated_stack

ROUNDS = 30


def _median_ms(fn: Callable[[], Any]) -> float:
    fn()
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _fill_other_org(table: str, count: int, start: int) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    items = [
        {
            "PutRequest": {
                "Item": {
                    "PK": {"S": "globex:note"},
                    "SK": {"S": f"globex:note:{start + i:032x}"},
                    "data": {"M": {"n": {"N": str(i)}}},
                }
            }
        }
        for i in range(count)
    ]
    for chunk in range(0, len(items), 25):
        client.batch_write_item(RequestItems={table: items[chunk : chunk + 25]})


def run() -> dict[str, Any]:
    from werkzeug.test import Client

    from appengine_core.identity.directory import DirectoryService, NewUser
    from appengine_core.infra import aws
    from appengine_local.gateway import LocalGateway
    from appengine_local.runtime import LocalLambda
    from appengine_local.template import load_template

    with emulated_stack() as created:
        table = created["AppTable"]
        directory = DirectoryService()
        for orgid in ("acme", "globex"):
            directory.create_org(orgid, orgid)
        directory.create_user(
            "acme",
            NewUser(
                email="b@acme.test",
                password="bench-password",
                roles=["RootAdmin"],
                permissions=["create", "read", "update", "delete"],
            ),
        )
        gateway = Client(LocalGateway(load_template(), LocalLambda(load_template())))
        token = gateway.post(
            "/profile/signin",
            headers={"orgid": "acme"},
            json={"email": "b@acme.test", "password": "bench-password"},
        ).json["token"]
        headers = {"orgid": "acme", "authorization": f"Bearer {token}"}
        for i in range(20):
            gateway.post("/repository/create", headers=headers, json={"datatype": "note", "data": {"n": i}})

        scanned: list[int] = []

        def count_scanned(parsed: dict[str, Any], model: Any, **_: Any) -> None:
            if model.name == "Query":
                scanned.append(int(parsed.get("ScannedCount", 0)))

        aws.dynamodb().meta.client.meta.events.register("after-call.dynamodb.Query", count_scanned)

        def items_read(find: Callable[[], Any]) -> int:
            scanned.clear()
            find()
            return sum(scanned)

        def unfiltered() -> Any:
            return gateway.post("/repository/find/note", headers=headers, json={"options": {"pageSize": 20}})

        def filtered() -> Any:
            return gateway.post("/repository/find/note", headers=headers, json={"query": {"n": {"$gte": 10}}})

        _fill_other_org(table, 100, 0)
        small = {
            "unfiltered": _median_ms(unfiltered),
            "filtered": _median_ms(filtered),
            "read unfiltered": items_read(unfiltered),
            "read filtered": items_read(filtered),
        }
        _fill_other_org(table, 99_900, 100)
        large = {
            "unfiltered": _median_ms(unfiltered),
            "filtered": _median_ms(filtered),
            "read unfiltered": items_read(unfiltered),
            "read filtered": items_read(filtered),
        }
        assert len(unfiltered().json["data"]) == 20

        return {"small": small, "large": large}


def main() -> None:
    result = run()
    print("repository find, 20 own records; other org's records in the same table")
    rows = [("items read", "read ", ""), ("moto ms", "", "  (moto walks the whole table per Query)")]
    for label, prefix, note in rows:
        for kind in ("unfiltered", "filtered"):
            small, large = result["small"][prefix + kind], result["large"][prefix + kind]
            figures = f"100 others {small:7.1f}   100,000 others {large:7.1f}   x{large / small:5.2f}"
            print(f"  {label:<10} {kind:<10} {figures}{note}")
    print("  (the DynamoDB calls of each route: bench.round_trips, which a test pins)")


if __name__ == "__main__":
    main()
