"""Decode a protobuf message whose strings may not be valid UTF-8, as protobuf itself would if it allowed it.

proto3 `string` fields must be UTF-8, and protobuf refuses the whole message when one is not. An OTLP export
holds many requests' spans (Traefik batches everyone's), so one client's `%FF` in a URL would cost every
span of the batch. Instead: the message is decoded once more as its twin, the same schema with every `string`
field declared `bytes` (built with protobuf's own descriptors, no decoding of ours), then copied field by
field into the real message, each string decoded with its bad bytes replaced by U+FFFD and counted.
"""

from __future__ import annotations

from functools import cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from google.protobuf.message import Message

TWIN = "lenient."  # the twins' package prefix, in a pool of their own


def parse_lenient(message_class: type[Message], data: bytes) -> tuple[Message, int]:
    """`data` as a `message_class`; and how many of its strings were not UTF-8 (kept, with U+FFFD)."""
    twin = _twin_class(message_class.DESCRIPTOR)()
    twin.ParseFromString(data)  # DecodeError if it is not this message at all
    message = message_class()
    repaired = _copy(twin, message)
    return message, repaired


def _copy(source: Message, target: Message) -> int:
    repaired = 0
    for field, value in source.ListFields():
        real = target.DESCRIPTOR.fields_by_name[field.name]
        if real.message_type is not None and real.message_type.GetOptions().map_entry:
            for key, item in value.items():
                repaired += _set_map_entry(target, real, key, item)
        elif real.is_repeated:
            for item in value:
                repaired += _append(getattr(target, real.name), real, item)
        elif real.type == FieldDescriptor.TYPE_MESSAGE:
            repaired += _copy(value, getattr(target, real.name))
        elif real.type == FieldDescriptor.TYPE_STRING:
            text, bad = _text(value)
            setattr(target, real.name, text)
            repaired += bad
        else:
            setattr(target, real.name, value)
    return repaired


def _append(container, field: FieldDescriptor, item) -> int:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _copy(item, container.add())
    if field.type == FieldDescriptor.TYPE_STRING:
        text, bad = _text(item)
        container.append(text)
        return bad
    container.append(item)
    return 0


def _set_map_entry(target: Message, field: FieldDescriptor, key, item) -> int:
    entries = getattr(target, field.name)
    repaired = 0
    if isinstance(key, bytes):
        key, bad = _text(key)
        repaired += bad
    value_field = field.message_type.fields_by_name["value"]
    if value_field.type == FieldDescriptor.TYPE_MESSAGE:
        return repaired + _copy(item, entries[key])
    if value_field.type == FieldDescriptor.TYPE_STRING:
        item, bad = _text(item)
        repaired += bad
    entries[key] = item
    return repaired


def _text(raw: bytes) -> tuple[str, int]:
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), 1


@cache
def _twin_class(descriptor: Descriptor) -> type[Message]:
    """The message class of `descriptor`'s twin: the same fields, its strings as bytes."""
    pool = descriptor_pool.DescriptorPool()
    for file in _files_in_dependency_order(descriptor.file):
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        proto.name = TWIN + proto.name
        proto.package = TWIN + proto.package
        proto.dependency[:] = [TWIN + name for name in proto.dependency]
        proto.ClearField("options")
        for message in proto.message_type:
            _as_bytes(message)
        for service in list(proto.service):
            proto.service.remove(service)
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(TWIN + descriptor.full_name))


def _as_bytes(message: descriptor_pb2.DescriptorProto) -> None:
    if not message.options.map_entry:  # a map's entry type must stay one
        message.ClearField("options")
    for field in message.field:
        if field.type == FieldDescriptor.TYPE_STRING:
            field.type = FieldDescriptor.TYPE_BYTES
        if field.type_name.startswith("."):
            field.type_name = "." + TWIN + field.type_name[1:]
        field.ClearField("options")
    for nested in message.nested_type:
        _as_bytes(nested)


def _files_in_dependency_order(file: FileDescriptor) -> list[FileDescriptor]:
    ordered: list[FileDescriptor] = []

    def visit(current: FileDescriptor) -> None:
        if current in ordered:
            return
        for dependency in current.dependencies:
            visit(dependency)
        ordered.append(current)

    visit(file)
    return ordered
