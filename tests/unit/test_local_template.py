"""The local stack reads template.yaml: intrinsic functions, the route map, and one-line errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lethe_local.server import route_map, template_rule
from lethe_local.template import Resolver, TemplateError, functions, load_template

TEMPLATE: dict[str, Any] = {
    "Parameters": {"Stage": {"Type": "String", "Default": "dev"}, "Demo": {"Type": "String", "Default": "true"}},
    "Conditions": {"IsDemo": {"Fn::Equals": [{"Ref": "Demo"}, "true"]}},
    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
}


def resolver() -> Resolver:
    made = Resolver(copy.deepcopy(TEMPLATE), region="eu-west-1", account="111122223333")
    made.physical["Queue"] = "https://sqs.local/111122223333/Queue"
    made.attributes[("Queue", "Arn")] = "arn:aws:sqs:eu-west-1:111122223333:Queue"
    return made


def test_ref_resolves_parameters_pseudo_parameters_and_resources() -> None:
    r = resolver()

    assert r.value({"Ref": "Stage"}) == "dev"
    assert r.value({"Ref": "AWS::Region"}) == "eu-west-1"
    assert r.value({"Ref": "Queue"}) == "https://sqs.local/111122223333/Queue"


def test_get_att_resolves_known_attributes() -> None:
    assert resolver().value({"Fn::GetAtt": ["Queue", "Arn"]}) == "arn:aws:sqs:eu-west-1:111122223333:Queue"


def test_sub_substitutes_refs_attributes_and_variables() -> None:
    r = resolver()

    value = r.value({"Fn::Sub": ["${Stage}:${Queue.Arn}:${AWS::AccountId}:${Extra}", {"Extra": "x1"}]})

    assert value == "dev:arn:aws:sqs:eu-west-1:111122223333:Queue:111122223333:x1"


def test_if_follows_its_condition() -> None:
    r = resolver()

    assert r.value({"Fn::If": ["IsDemo", "yes", "no"]}) == "yes"
    r.parameters["Demo"] = "false"
    assert r.value({"Fn::If": ["IsDemo", "yes", "no"]}) == "no"


def test_unknown_reference_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="NoSuchThing"):
        resolver().value({"Ref": "NoSuchThing"})


def test_every_api_route_of_the_template_maps_to_a_function() -> None:
    # Given the repository's template
    template = load_template()
    declared = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for resource in template["Resources"].values()
        if resource.get("Type") == "AWS::Serverless::Function"
        for event in (resource["Properties"].get("Events") or {}).values()
        if event.get("Type") == "Api"
    }

    # When
    specs = functions(template)
    mapped = {(route.method, route.path) for spec in specs.values() for route in spec.routes}

    # Then every declared route is routed, and the local gateway can match each one
    assert declared
    assert mapped == declared
    adapter = route_map(specs).bind("127.0.0.1")
    for method, path in declared:
        concrete = path.replace("{", "").replace("}", "")
        (logical_id, resource), _ = adapter.match(concrete, method=method)
        assert (method, resource) in {(r.method, r.path) for r in specs[logical_id].routes}


def test_template_paths_become_werkzeug_rules() -> None:
    assert template_rule("/requests/{id}/verify") == "/requests/<id>/verify"
    assert template_rule("/files/{proxy+}") == "/files/<path:proxy>"


def test_path_parameters_are_captured() -> None:
    adapter = route_map(functions(load_template())).bind("127.0.0.1")

    (logical_id, resource), arguments = adapter.match("/requests/req_unit_42/verify", method="POST")

    assert logical_id == "PublicApiFunction"
    assert resource == "/requests/{id}/verify"
    assert arguments == {"id": "req_unit_42"}


def test_function_whose_code_is_missing_is_a_one_line_template_error() -> None:
    # Given a function whose CodeUri does not exist
    template = load_template()
    broken = copy.deepcopy(template)
    broken["Resources"]["GhostFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {"CodeUri": "functions/no_such_function_dir/", "Handler": "app.lambda_handler"},
    }

    # When / Then
    with pytest.raises(TemplateError) as raised:
        functions(broken)
    message = str(raised.value)
    assert "GhostFunction" in message
    assert "functions/no_such_function_dir" in message
    assert "\n" not in message


def test_invalid_yaml_is_a_one_line_template_error(tmp_path: Any) -> None:
    bad = tmp_path / "template.yaml"
    bad.write_text("Resources:\n  A: [unclosed\n")

    with pytest.raises(TemplateError) as raised:
        load_template(bad)

    assert "not valid YAML" in str(raised.value)
    assert "\n" not in str(raised.value)
