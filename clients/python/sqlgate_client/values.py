"""Python values <-> sqlgate Values, exactly (no float for DECIMAL, no precision loss)."""
import datetime
import decimal
import json

from sqlgate.v1 import sqlgate_pb2 as pb


class Json:
    """Marks a Python object to be sent as json_value."""

    def __init__(self, obj):
        self.obj = obj


def _time_text(delta):
    micros = delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    return f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}.{fraction:06d}"


def to_value(v):
    if v is None:
        return pb.Value(null_value=pb.NULL_VALUE)
    if isinstance(v, bool):
        return pb.Value(bool_value=v)
    if isinstance(v, int):
        return pb.Value(uint64_value=v) if v > 2**63 - 1 else pb.Value(int64_value=v)
    if isinstance(v, float):
        return pb.Value(double_value=v)
    if isinstance(v, str):
        return pb.Value(string_value=v)
    if isinstance(v, (bytes, bytearray)):
        return pb.Value(bytes_value=bytes(v))
    if isinstance(v, decimal.Decimal):
        return pb.Value(decimal_value=str(v))
    if isinstance(v, datetime.datetime):
        # Not strftime("%Y"): it does not pad years below 1000 ("1-03-04").
        # A time zone, if any, is dropped (DATETIME has none).
        return pb.Value(datetime_value=v.replace(tzinfo=None).isoformat(" ", "microseconds"))
    if isinstance(v, datetime.date):
        return pb.Value(date_value=v.isoformat())
    if isinstance(v, datetime.timedelta):
        return pb.Value(time_value=_time_text(v))
    if isinstance(v, datetime.time):  # a time of day (DB-API's Time); results come back as timedelta
        return pb.Value(time_value=v.strftime("%H:%M:%S.%f"))
    if isinstance(v, Json):
        return pb.Value(json_value=json.dumps(v.obj))
    raise TypeError(f"cannot send {type(v).__name__} as a SQL value")


def _add_int(add, v):
    if v > _INT64_MAX:
        add(uint64_value=v)
    else:
        add(int64_value=v)


def _add_datetime(add, v):
    if v.tzinfo is not None:
        v = v.replace(tzinfo=None)
    add(datetime_value=v.isoformat(" ", "microseconds"))


_INT64_MAX = 2**63 - 1
_NULL = pb.NULL_VALUE
# The common types exactly (not their subclasses: bool is an int), each
# appended as to_value converts it.
_ADD = {
    type(None): lambda add, v: add(null_value=_NULL),
    bool: lambda add, v: add(bool_value=v),
    int: _add_int,
    float: lambda add, v: add(double_value=v),
    str: lambda add, v: add(string_value=v),
    bytes: lambda add, v: add(bytes_value=v),
    decimal.Decimal: lambda add, v: add(decimal_value=str(v)),
    datetime.datetime: _add_datetime,
    datetime.date: lambda add, v: add(date_value=v.isoformat()),
    datetime.timedelta: lambda add, v: add(time_value=_time_text(v)),
}


def add_values(repeated, values):
    """Appends `values`, each converted as to_value does, to `repeated` (a
    message's repeated Value field) in place: a Value made on its own and
    then copied into its request costs about twice as much (bulk inserts
    convert hundreds of thousands)."""
    add = repeated.add
    for v in values:
        convert = _ADD.get(type(v))
        if convert is None:
            repeated.append(to_value(v))
        else:
            convert(add, v)


def _parse_time(text):
    negative = text.startswith("-")
    clock, _, fraction = text.lstrip("-").partition(".")
    hours, minutes, seconds = (int(p) for p in clock.split(":"))
    micros = int((fraction + "000000")[:6]) if fraction else 0
    delta = datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds, microseconds=micros)
    return -delta if negative else delta


# Kinds whose protobuf value is already the Python value.
_PLAIN_KINDS = frozenset({"int64_value", "uint64_value", "double_value", "float_value", "bool_value",
                          "string_value", "bytes_value"})


def from_value(value):
    kind = value.WhichOneof("kind")
    if kind in _PLAIN_KINDS:
        return getattr(value, kind)
    if kind is None or kind == "null_value":
        return None
    raw = getattr(value, kind)
    if kind == "decimal_value":
        return decimal.Decimal(raw)
    if kind == "date_value":
        # MySQL's zero date has no datetime.date: it stays text.
        return raw if raw.startswith("0000") else datetime.date.fromisoformat(raw)
    if kind == "datetime_value":
        if raw.startswith("0000"):
            return raw
        try:
            return datetime.datetime.fromisoformat(raw)  # fast (C); what the gateway sends
        except ValueError:  # a form older Pythons' fromisoformat does not take
            return datetime.datetime.strptime(raw, "%Y-%m-%d %H:%M:%S.%f" if "." in raw else "%Y-%m-%d %H:%M:%S")
    if kind == "time_value":
        return _parse_time(raw)
    if kind == "json_value":
        return json.loads(raw)
    return raw  # int64, uint64, double, float, bool, string, bytes
