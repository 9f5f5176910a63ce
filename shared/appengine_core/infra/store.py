"""Tenant-scoped DynamoDB access: the only module that reads or writes the table.

Every operation takes ``TenantKey``s (which cannot be built without a valid orgid) or an explicit
orgid; there is no Scan and no way to address a key outside the caller's org prefix. Uniqueness and
atomicity come from conditional writes and transactions, never from read-then-write.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from appengine_core.infra import aws
from appengine_core.infra.settings import get_settings
from appengine_core.infra.tenancy import TenantKey, collection_partition, org_prefix

TTL_ATTRIBUTE = "ttl"
_KEY_ATTRIBUTES = ("PK", "SK")
# A write refused only because a concurrent transaction held one of its items wrote nothing and judged
# no condition, so it is sent again as it was: at most this many times in all, after a jittered pause.
COLLISION_ATTEMPTS = 3
COLLISION_PAUSE_SECONDS = 0.02
_T = TypeVar("_T")


class ConditionFailed(Exception):
    """A conditional write found the item in another state than required.

    ``index`` is the failing operation's position inside a transaction (None for single writes).
    """

    def __init__(self, index: int | None = None) -> None:
        super().__init__(f"condition failed at operation {index}")
        self.index = index


class TransactionCollided(Exception):
    """A write collided with a concurrent transaction on the same item (DynamoDB's TransactionConflict)
    every time the store sent it: no condition was judged, so the caller decides again from a fresh read,
    or (the edge's default) answers 503 with ``Retry-After``."""


def _raise_write_error(error: ClientError) -> None:
    code = aws.client_error_code(error)
    if code == "ConditionalCheckFailedException":
        raise ConditionFailed() from error
    if code == "TransactionConflictException":
        raise TransactionCollided() from error


def _until_no_collision(write: Callable[[], _T]) -> _T:
    """``write``, sent again (bounded, with jittered backoff) while it collides with a transaction."""
    for attempt in range(1, COLLISION_ATTEMPTS):
        try:
            return write()
        except TransactionCollided:
            time.sleep(random.uniform(0, COLLISION_PAUSE_SECONDS * 2**attempt))  # noqa: S311 (jitter)
    return write()


def to_dynamo(value: Any) -> Any:
    """Python/JSON value -> what boto3's DynamoDB resource accepts (floats become Decimals)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {str(k): to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [from_dynamo(v) for v in value]
    if isinstance(value, set):
        return sorted(from_dynamo(v) for v in value)
    return value


def _strip_keys(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: from_dynamo(v) for k, v in item.items() if k not in _KEY_ATTRIBUTES}


@dataclass(frozen=True)
class Put:
    key: TenantKey
    attributes: Mapping[str, Any]
    must_not_exist: bool = True
    condition: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Update:
    key: TenantKey
    expression: str
    values: Mapping[str, Any] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)
    condition: str | None = None


@dataclass(frozen=True)
class Delete:
    key: TenantKey
    condition: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    key: TenantKey
    condition: str
    values: Mapping[str, Any] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)


Operation = Put | Update | Delete | Check


@dataclass(frozen=True)
class QueryPage:
    items: list[dict[str, Any]]
    last_sort_key: str | None
    examined: int = 0  # items read before any filter (what the request paid for)


class TenantStore:
    """Reads and writes of tenant items in the application table."""

    def __init__(self, table_name: str | None = None) -> None:
        self._table_name = table_name or get_settings().table_name

    @property
    def _table(self) -> Any:
        return aws.dynamodb().Table(self._table_name)

    # -- reads ---------------------------------------------------------------------------------
    def get(self, key: TenantKey, *, consistent: bool = False) -> dict[str, Any] | None:
        response = self._table.get_item(Key=key.as_item_key(), ConsistentRead=consistent)
        item = response.get("Item")
        return _strip_keys(item) if item else None

    def batch_get(self, keys: Sequence[TenantKey], *, consistent: bool = False) -> dict[str, dict[str, Any]]:
        """Items by sort key, in one round trip (at most 100 keys)."""
        if not keys:
            return {}
        if len(keys) > 100:
            raise ValueError("batch_get takes at most 100 keys")
        request = {
            self._table_name: {
                "Keys": [k.as_item_key() for k in dict.fromkeys(keys)],
                "ConsistentRead": consistent,
            }
        }
        found: dict[str, dict[str, Any]] = {}
        client = aws.dynamodb()
        while request:
            response = client.batch_get_item(RequestItems=request)  # type: ignore[arg-type]
            for item in response.get("Responses", {}).get(self._table_name, []):
                found[str(item["SK"])] = _strip_keys(item)
            request = response.get("UnprocessedKeys") or {}  # type: ignore[assignment]
        return found

    def query(
        self,
        orgid: str,
        collection: str,
        *,
        limit: int,
        after_sort_key: str | None = None,
        sort_prefix: str | None = None,
        sort_from: str | None = None,
        newest_first: bool = False,
        consistent: bool = False,
        filter_condition: Any = None,
    ) -> QueryPage:
        """One page of a collection of ``orgid``, in sort-key order. Cost grows with ``limit`` only."""
        partition = collection_partition(orgid, collection)
        condition: Any = Key("PK").eq(partition)
        if sort_prefix is not None:
            if not sort_prefix.startswith(org_prefix(orgid)):
                raise ValueError("sort prefix outside the org")
            condition = condition & Key("SK").begins_with(sort_prefix)
        elif sort_from is not None:
            if not sort_from.startswith(org_prefix(orgid)):
                raise ValueError("sort key outside the org")
            condition = condition & Key("SK").gte(sort_from)
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": condition,
            "Limit": limit,
            "ScanIndexForward": not newest_first,
            "ConsistentRead": consistent,
        }
        if after_sort_key is not None:
            if not after_sort_key.startswith(org_prefix(orgid)):
                raise ValueError("cursor outside the org")
            kwargs["ExclusiveStartKey"] = {"PK": partition, "SK": after_sort_key}
        if filter_condition is not None:
            kwargs["FilterExpression"] = filter_condition
        response = self._table.query(**kwargs)
        last = response.get("LastEvaluatedKey")
        return QueryPage(
            items=[_strip_keys(i) | {"_sk": i["SK"]} for i in response.get("Items", [])],
            last_sort_key=str(last["SK"]) if last else None,
            examined=int(response.get("ScannedCount", 0)),
        )

    def query_expiry_index(self, bucket: str, *, until_epoch: int, limit: int = 100) -> list[dict[str, Any]]:
        """Items of ``bucket`` whose ``expiresAtEpoch`` has passed, across orgs (offline jobs only).

        The sparse ``ExpiryIndex`` holds only items that carry ``expiryBucket``; a job removes the
        attribute when it handles an item, so the index stays as small as the work left to do.
        """
        response = self._table.query(
            IndexName="ExpiryIndex",
            KeyConditionExpression=Key("expiryBucket").eq(bucket) & Key("expiresAtEpoch").lte(until_epoch),
            Limit=limit,
        )
        return [dict(item) for item in response.get("Items", [])]

    # -- writes --------------------------------------------------------------------------------
    def put(self, op: Put) -> None:
        args = self._put_args(op)

        def put_once() -> None:
            try:
                self._table.put_item(**args)
            except ClientError as error:
                _raise_write_error(error)
                raise

        _until_no_collision(put_once)

    def update(self, op: Update, *, return_new: bool = True) -> dict[str, Any] | None:
        args = self._update_args(op)
        if return_new:
            args["ReturnValues"] = "ALL_NEW"

        def update_once() -> dict[str, Any]:
            try:
                return dict(self._table.update_item(**args))
            except ClientError as error:
                _raise_write_error(error)
                raise

        attributes = _until_no_collision(update_once).get("Attributes")
        return _strip_keys(attributes) if attributes else None

    def delete(self, op: Delete) -> None:
        args: dict[str, Any] = {"Key": op.key.as_item_key()}
        _add_condition(args, op.condition, op.values, op.names)

        def delete_once() -> None:
            try:
                self._table.delete_item(**args)
            except ClientError as error:
                _raise_write_error(error)
                raise

        _until_no_collision(delete_once)

    def transact(self, operations: Iterable[Operation]) -> None:
        """All operations commit or none does; a failed condition raises ``ConditionFailed(index)``;
        a transaction cancelled by concurrent ones at each of its ``COLLISION_ATTEMPTS`` raises
        ``TransactionCollided``."""
        items: list[dict[str, Any]] = []
        for op in operations:
            if isinstance(op, Put):
                items.append({"Put": {"TableName": self._table_name, **self._put_args(op)}})
            elif isinstance(op, Update):
                items.append({"Update": {"TableName": self._table_name, **self._update_args(op)}})
            elif isinstance(op, Delete):
                args: dict[str, Any] = {"TableName": self._table_name, "Key": op.key.as_item_key()}
                _add_condition(args, op.condition, op.values, op.names)
                items.append({"Delete": args})
            else:
                args = {"TableName": self._table_name, "Key": op.key.as_item_key()}
                _add_condition(args, op.condition, op.values, op.names)
                items.append({"ConditionCheck": args})
        if not items:
            return

        def transact_once() -> None:
            try:
                self._table.meta.client.transact_write_items(TransactItems=items)
            except ClientError as error:
                if aws.client_error_code(error) != "TransactionCanceledException":
                    raise
                reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
                for index, reason in enumerate(reasons):
                    if reason.get("Code") == "ConditionalCheckFailed":
                        raise ConditionFailed(index) from error
                if any(reason.get("Code") == "TransactionConflict" for reason in reasons):
                    raise TransactionCollided() from error
                raise

        _until_no_collision(transact_once)

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _put_args(op: Put) -> dict[str, Any]:
        item = {**to_dynamo(dict(op.attributes)), **op.key.as_item_key()}
        args: dict[str, Any] = {"Item": item}
        condition = op.condition
        if op.must_not_exist:
            condition = "attribute_not_exists(PK)" + (f" AND ({condition})" if condition else "")
        _add_condition(args, condition, op.values, op.names)
        return args

    @staticmethod
    def _update_args(op: Update) -> dict[str, Any]:
        args: dict[str, Any] = {"Key": op.key.as_item_key(), "UpdateExpression": op.expression}
        _add_condition(args, op.condition, op.values, op.names, always_values=True)
        return args


def _add_condition(
    args: dict[str, Any],
    condition: str | None,
    values: Mapping[str, Any],
    names: Mapping[str, str],
    *,
    always_values: bool = False,
) -> None:
    if condition:
        args["ConditionExpression"] = condition
    if values and (condition or always_values):
        args["ExpressionAttributeValues"] = to_dynamo(dict(values))
    if names:
        args["ExpressionAttributeNames"] = dict(names)
