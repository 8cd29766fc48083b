"""The query parameters' parsers, without a server: what each API's spelling becomes."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from workshop.tracestore.query import BadQuery, nesting, tag_map, v1_trace_query, v3_trace_query


def test_nesting_counts_brackets_outside_strings_only():
    assert nesting('{"a": 1}') == 1 and nesting('{"a": [[1]]}') == 3
    assert nesting('{"a": "[[[[", "b": "\\"{{"}') == 1  # in strings, escaped quotes too
    assert tag_map('{"a": "' + "[" * 100 + '"}', "tags") == {"a": "[" * 100}


def test_one_query_from_either_api():
    v1 = v1_trace_query(MultiDict({"service": "gateway", "operation": "op", "minDuration": "1ms", "limit": "5"}))
    spelled = {"query.serviceName": "gateway", "query.operation_name": "op", "query.duration_min": "1ms"}
    v3 = v3_trace_query(MultiDict({**spelled, "query.num_traces": "5"}))
    assert (v1.service, v1.operation, v1.min_duration_us, v1.limit) == ("gateway", "op", 1000, 5)
    assert (v3.service, v3.operation, v3.min_duration_us, v3.limit) == ("gateway", "op", 1000, 5)


def test_a_bad_query_carries_its_status_and_names_the_parameter_as_sent():
    with pytest.raises(BadQuery) as bad:
        v3_trace_query(MultiDict({"query.service_name": "g", "query.attributes": "[1]"}))
    assert bad.value.status == 400 and str(bad.value).startswith("query.attributes must be a JSON map")
    with pytest.raises(BadQuery, match="parameter 'tags' must be a JSON map"):
        v1_trace_query(MultiDict({"service": "g", "tags": "[1]"}))
