"""Creates the template's AWS resources in an emulator (moto) and resolves the functions' environment.

Used by the local stack (moto in server mode) and by the tests (moto's ``mock_aws`` in-process), so both
run against tables, buses and secrets shaped exactly as ``template.yaml`` declares them.
"""

from __future__ import annotations

import secrets as secrets_module
from collections.abc import Mapping
from typing import Any

import boto3

from appengine_local.template import Template, load_template

LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"


def physical_name(logical_id: str) -> str:
    return f"appengine-local-{logical_id}"


def kms_alias(logical_id: str) -> str:
    """The alias the local stack gives a template KMS key (KMS accepts it wherever a key id goes)."""
    return f"alias/{physical_name(logical_id)}"


def resolve(value: Any, template: Template) -> Any:
    """The local value of a template expression (Ref to a resource or parameter, simple Sub/GetAtt)."""
    if isinstance(value, dict) and len(value) == 1:
        ((kind, argument),) = value.items()
        if kind == "Ref":
            resource = template.resources.get(argument)
            if resource is not None:
                if resource.get("Type") == "AWS::Events::EventBus":
                    return resolve(resource["Properties"]["Name"], template)
                if resource.get("Type") == "AWS::KMS::Key":
                    # A key's id is random; its alias is what the functions are given locally.
                    return kms_alias(argument)
                return physical_name(argument)
            if argument == "AWS::StackName":
                return "appengine-local"
            if argument == "AWS::Region":
                return LOCAL_REGION
            return template.parameter_default(argument)
        if kind == "Fn::GetAtt":
            logical_id, attribute = argument
            return f"arn:aws:local:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{logical_id}/{attribute}"
        if kind == "Fn::Sub" and isinstance(argument, str):
            text = argument.replace("${AWS::StackName}", "appengine-local").replace(
                "${AWS::Region}", LOCAL_REGION
            )
            for name in template.parameters:
                text = text.replace("${" + name + "}", str(template.parameter_default(name)))
            return text
    return value


def function_environment(logical_id: str, template: Template | None = None) -> dict[str, str]:
    template = template or load_template()
    function = template.functions[logical_id]
    return {name: str(resolve(value, template)) for name, value in function.environment.items()}


def merged_environment(template: Template | None = None) -> dict[str, str]:
    """Every function's environment in one map (the local stack runs them all in one process)."""
    template = template or load_template()
    merged: dict[str, str] = {}
    for logical_id in template.functions:
        for name, value in function_environment(logical_id, template).items():
            if merged.get(name, value) != value:
                raise ValueError(f"functions disagree on {name}; the local stack shares one environment")
            merged[name] = value
    return merged


def _table_arguments(logical_id: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "TableName": physical_name(logical_id),
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if arguments["BillingMode"] == "PROVISIONED":
        arguments["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
    if "GlobalSecondaryIndexes" in properties:
        arguments["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    if "StreamSpecification" in properties:
        arguments["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    return arguments


def provision(
    template: Template | None = None, session: boto3.session.Session | None = None
) -> dict[str, str]:
    """Create every table, bus, secret and KMS key of the template; returns logical id -> physical name
    (a key's alias)."""
    template = template or load_template()
    session = session or boto3.session.Session(region_name=LOCAL_REGION)
    created: dict[str, str] = {}
    dynamodb = session.client("dynamodb")
    for logical_id, resource in template.of_type("AWS::DynamoDB::Table").items():
        properties = resource["Properties"]
        dynamodb.create_table(**_table_arguments(logical_id, properties))
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=physical_name(logical_id),
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        created[logical_id] = physical_name(logical_id)
    events = session.client("events")
    for logical_id, resource in template.of_type("AWS::Events::EventBus").items():
        name = str(resolve(resource["Properties"]["Name"], template))
        events.create_event_bus(Name=name)
        created[logical_id] = name
    secrets = session.client("secretsmanager")
    for logical_id in template.of_type("AWS::SecretsManager::Secret"):
        properties = template.resources[logical_id]["Properties"]
        if "GenerateSecretString" in properties:
            # What CloudFormation does for GenerateSecretString: a random value no one has seen.
            length = int(properties["GenerateSecretString"].get("PasswordLength", 32))
            secret_string = secrets_module.token_urlsafe(length)[:length]
        else:
            secret_string = properties.get("SecretString", "{}")
        secrets.create_secret(Name=physical_name(logical_id), SecretString=str(secret_string))
        created[logical_id] = physical_name(logical_id)
    kms = session.client("kms")
    for logical_id, resource in template.of_type("AWS::KMS::Key").items():
        description = str(resource.get("Properties", {}).get("Description", logical_id))
        key_id = kms.create_key(Description=description, KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=kms_alias(logical_id), TargetKeyId=key_id)
        created[logical_id] = kms_alias(logical_id)
    return created
