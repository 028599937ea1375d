"""The environment key's policy, evaluated (principalmapper, through tests/unit/policy_eval.py) for each call an AWS
service makes on it while delivering to something the key encrypts, with the request context the page for that
path documents, on dev (Jobs API on: its upload rule delivers to the encrypted jobs queue) and prod (defaults).

The pages, and what each says the service needs in the key policy:

- EventBridge rule -> SQS queue: "My events are not delivered to the target Amazon SQS queue" (EventBridge User
  Guide, Troubleshooting, https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-troubleshooting.html
  #eb-sqs-encrypted): `events.amazonaws.com`, kms:Decrypt and kms:GenerateDataKey, Resource "*", no condition.
- AWS services -> SNS topic: "Enable compatibility between event sources from AWS services and encrypted topics"
  (Amazon SNS Developer Guide, https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html
  #compatibility-with-aws-services): the service principal (CloudWatch `cloudwatch.amazonaws.com`),
  kms:GenerateDataKey* and kms:Decrypt, and `aws:SourceAccount` / `aws:SourceArn` against the confused deputy;
  "Adding the aws:SourceAccount, aws:SourceArn, and aws:SourceOrgID to a AWS KMS policy is not supported for
  EventBridge-to-encrypted topics".
- AWS Budgets -> SNS topic: "Creating an Amazon SNS topic for budget notifications" (AWS Cost Management User
  Guide, https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html): `budgets.amazonaws.com`,
  kms:GenerateDataKey* and kms:Decrypt; the source conditions the page gives Budgets are `aws:SourceAccount` =
  the account and `aws:SourceArn` like `arn:aws:budgets::<account-id>:*`.
- CloudWatch Logs -> log group: "Encrypt log data in CloudWatch Logs using AWS Key Management Service"
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html): `logs.<region>.amazonaws.com`,
  kms:Encrypt*, Decrypt*, ReEncrypt*, GenerateDataKey* (and Describe*), with `kms:EncryptionContext:aws:logs:arn`,
  whose value is the log group's ARN.

A service principal's call on a key is decided by the key policy alone (no identity policy): an explicit Deny in
it wins, else an Allow whose Principal names the service ("Policy evaluation logic", IAM User Guide).
"""

from __future__ import annotations

import fnmatch
from typing import Any

import botocore.session
import pytest

from deepsentinel.settings import load_settings
from tests.unit.policy_eval import ACCOUNT_ID, ALLOW, IMPLICIT_DENY, principal_decision, resolve
from tests.unit.synth_helpers import named, of_type, only, policy

OTHER_ACCOUNT = "444455556666"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
ENCRYPTED_WRITES = ("kms:GenerateDataKey", "kms:Decrypt")  # what SNS and SQS call for an encrypted message


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """dev with the Jobs API (the EventBridge -> SQS path), prod with its defaults (no EventBridge target). Each
    stack's document depends on its own settings only, so these are the session's synths of those variants."""
    from tests.synth_cache import synthesized

    dev = synthesized(tmp_path_factory, [("dev", ["jobs_api_enabled=true"])], include_account_stack=False).dev
    return {"dev": dev, "prod": synthesized(tmp_path_factory, [("dev", []), ("prod", [])]).prod}


@pytest.fixture(scope="module")
def fifo_dev(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """dev with the Jobs API and a FIFO jobs queue: the upload rule invokes a function, not the queue."""
    from tests.synth_cache import synthesized

    return synthesized(tmp_path_factory, [("dev", ["jobs_api_enabled=true", "fifo_job_queue=true"])],
                       include_account_stack=False).dev


def key_policy(document: dict[str, Any]) -> dict[str, Any]:
    return resolve(policy(only(document, "aws_kms_key")[1]))


def key_arn(environment: str) -> str:
    return f"arn:aws:kms:{load_settings(environment).region}:{ACCOUNT_ID}:key/{KEY_ID}"


def service_decision(document: dict[str, Any], service: str, action: str, resource: str,
                     context: dict[str, str]) -> str:
    """A service principal's request on the key policy: only the statements naming the service (or "*") apply."""
    return principal_decision(document, kind="Service", principal=service, action=action, resource=resource,
                              context=context)


def alarm_arn(environment: str, account: str, name: str) -> str:
    return f"arn:aws:cloudwatch:{load_settings(environment).region}:{account}:alarm:{name}"


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_environments_alarms_may_use_the_key_for_the_alerts_topic_and_no_one_elses(stacks, environment):
    """SNS Developer Guide, "Enable compatibility between event sources from AWS services and encrypted topics":
    CloudWatch (cloudwatch.amazonaws.com) needs kms:GenerateDataKey* and kms:Decrypt, with aws:SourceAccount and
    aws:SourceArn (the alarm, arn:aws:cloudwatch:<region>:<account>:alarm:<name>) against the confused deputy.
    Every alarm the environment synthesizes may; an alarm of another account or of the other environment may not."""
    document = stacks[environment]
    other = "prod" if environment == "dev" else "dev"
    key, resource = key_policy(document), key_arn(environment)
    alarms = [c["alarm_name"] for c in of_type(document, "aws_cloudwatch_metric_alarm").values()]
    assert alarms
    for name in alarms:
        for action in ENCRYPTED_WRITES:
            context = {"aws:SourceAccount": ACCOUNT_ID, "aws:SourceArn": alarm_arn(environment, ACCOUNT_ID, name)}
            assert service_decision(key, "cloudwatch.amazonaws.com", action, resource, context) == ALLOW, name
    stranger = alarms[0]
    other_account = {"aws:SourceAccount": OTHER_ACCOUNT,
                     "aws:SourceArn": alarm_arn(environment, OTHER_ACCOUNT, stranger)}
    other_environment = {"aws:SourceAccount": ACCOUNT_ID,
                         "aws:SourceArn": alarm_arn(environment, ACCOUNT_ID, stranger.replace(environment, other, 1))}
    for context in (other_account, other_environment):
        assert service_decision(key, "cloudwatch.amazonaws.com", "kms:GenerateDataKey", resource,
                                context) == IMPLICIT_DENY, context


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_accounts_budgets_may_use_the_key_for_the_alerts_topic_and_another_accounts_may_not(stacks, environment):
    """AWS Cost Management User Guide, "Creating an Amazon SNS topic for budget notifications": budgets.amazonaws.com
    needs kms:GenerateDataKey* and kms:Decrypt; the page's source conditions are aws:SourceAccount = the account and
    aws:SourceArn like arn:aws:budgets::<account-id>:* (a budget's ARN is arn:aws:budgets::<account>:budget/<name>,
    Service Authorization Reference)."""
    document = stacks[environment]
    key, resource = key_policy(document), key_arn(environment)
    budget = only(document, "aws_budgets_budget")[1]["name"]
    for action in ENCRYPTED_WRITES:
        ours = {"aws:SourceAccount": ACCOUNT_ID, "aws:SourceArn": f"arn:aws:budgets::{ACCOUNT_ID}:budget/{budget}"}
        assert service_decision(key, "budgets.amazonaws.com", action, resource, ours) == ALLOW
        theirs = {"aws:SourceAccount": OTHER_ACCOUNT,
                  "aws:SourceArn": f"arn:aws:budgets::{OTHER_ACCOUNT}:budget/{budget}"}
        assert service_decision(key, "budgets.amazonaws.com", action, resource, theirs) == IMPLICIT_DENY


def test_the_upload_rule_may_deliver_to_the_encrypted_jobs_queue_without_source_keys(stacks):
    """EventBridge User Guide, "My events are not delivered to the target Amazon SQS queue": the key policy must let
    events.amazonaws.com call kms:Decrypt and kms:GenerateDataKey, and the page shows no condition; the SNS Developer
    Guide says aws:SourceAccount / aws:SourceArn in a key policy are not supported for EventBridge. So the call must
    be allowed with no source keys in its context (with a StringEquals on aws:SourceAccount it would be denied)."""
    key, resource = key_policy(stacks["dev"]), key_arn("dev")
    for action in ENCRYPTED_WRITES:
        assert service_decision(key, "events.amazonaws.com", action, resource, {}) == ALLOW


def test_no_other_rule_reaches_the_key_through_the_jobs_queue(stacks):
    """The key cannot tell EventBridge rules apart (previous test), so the queue does: "Using resource-based policies
    for Amazon EventBridge", Amazon SQS permissions (https://docs.aws.amazon.com/eventbridge/latest/userguide/
    eb-use-resource-based.html#eb-sqs-permissions) scopes sqs:SendMessage by aws:SourceArn, the rule. The upload
    rule may send; the same rule name in another account may not."""
    document = stacks["dev"]
    region = load_settings("dev").region
    queue_name, queue = named(document, "aws_sqs_queue", "jobs-queue")
    rule_name, rule = named(document, "aws_cloudwatch_event_rule", "upload-rule")
    queue_arn = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{queue['name']}"
    rule_arn = f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule['name']}"
    queue_policy = resolve(policy(only(document, "aws_sqs_queue_policy")[1]), {
        f"aws_sqs_queue.{queue_name}.arn": queue_arn, f"aws_cloudwatch_event_rule.{rule_name}.arn": rule_arn})
    assert service_decision(queue_policy, "events.amazonaws.com", "sqs:SendMessage", queue_arn,
                            {"aws:SourceArn": rule_arn, "aws:SourceAccount": ACCOUNT_ID}) == ALLOW
    stranger = rule_arn.replace(ACCOUNT_ID, OTHER_ACCOUNT)
    assert service_decision(queue_policy, "events.amazonaws.com", "sqs:SendMessage", queue_arn,
                            {"aws:SourceArn": stranger, "aws:SourceAccount": OTHER_ACCOUNT}) == IMPLICIT_DENY


def test_without_an_eventbridge_target_the_key_grants_eventbridge_nothing(stacks, fifo_dev):
    """Same EventBridge page: the grant exists for a rule delivering to an encrypted queue. prod's defaults have no
    Jobs API, and with a FIFO jobs queue the upload rule invokes a function: no rule of theirs delivers to anything
    this key encrypts (every target is a Lambda function)."""
    for document, environment in ((stacks["prod"], "prod"), (fifo_dev, "dev")):
        targets = [c["arn"] for c in of_type(document, "aws_cloudwatch_event_target").values()]
        assert targets and all("aws_lambda_function." in arn for arn in targets), targets
        key, resource = key_policy(document), key_arn(environment)
        for action in ENCRYPTED_WRITES:
            assert service_decision(key, "events.amazonaws.com", action, resource, {}) == IMPLICIT_DENY


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_cloudwatch_logs_may_use_the_key_for_this_accounts_log_groups_only(stacks, environment):
    """CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs using AWS Key Management Service": the
    regional service principal logs.<region>.amazonaws.com, with kms:EncryptionContext:aws:logs:arn = the log
    group's ARN (arn:aws:logs:<region>:<account>:log-group:<name>). Every log group the environment encrypts with
    the key may; a log group of another account, a call without that context, or another region's principal may
    not."""
    document = stacks[environment]
    region = load_settings(environment).region
    key, resource = key_policy(document), key_arn(environment)
    principal = f"logs.{region}.amazonaws.com"
    groups = [c["name"] for c in of_type(document, "aws_cloudwatch_log_group").values() if c.get("kms_key_id")]
    assert groups
    for name in groups:
        context = {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{name}"}
        for action in ("kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt", "kms:ReEncryptFrom"):
            assert service_decision(key, principal, action, resource, context) == ALLOW, (name, action)
    theirs = {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{OTHER_ACCOUNT}:log-group:{groups[0]}"}
    ours = {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{groups[0]}"}
    assert service_decision(key, principal, "kms:Decrypt", resource, theirs) == IMPLICIT_DENY
    assert service_decision(key, principal, "kms:Decrypt", resource, {}) == IMPLICIT_DENY
    assert service_decision(key, "logs.us-east-1.amazonaws.com", "kms:Decrypt", resource, ours) == IMPLICIT_DENY


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_no_grant_under_an_encryption_context_condition_names_an_operation_without_one(stacks, environment):
    """KMS API Reference, GrantConstraints (https://docs.aws.amazon.com/kms/latest/APIReference/
    API_GrantConstraints.html): operations that do not support an encryption context include "management operations,
    such as DescribeKey"; KMS Developer Guide, "Encryption context": the cryptographic operations with symmetric keys
    accept one. A statement allowing an operation only under kms:EncryptionContext:* can therefore never allow a
    management operation: each action pattern of such a statement, expanded over KMS's operations (botocore's service
    model), must name only the symmetric cryptographic operations."""
    cryptographic = {"Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
                     "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"}
    operations = botocore.session.get_session().get_service_model("kms").operation_names
    for statement in key_policy(stacks[environment])["Statement"]:
        keys = [k for operator in statement.get("Condition", {}).values() for k in operator]
        if statement["Effect"] != "Allow" or not any(k.lower().startswith("kms:encryptioncontext:") for k in keys):
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        expanded = {op for pattern in actions for op in operations
                    if fnmatch.fnmatchcase(op.lower(), pattern.removeprefix("kms:").lower())}
        assert expanded and expanded <= cryptographic, (statement["Sid"], sorted(expanded - cryptographic))
