"""The local moto server's patches answer as AWS does (checked in-process, without Terraform)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from deepsentinel.local_aws import start_in_process


@pytest.fixture(scope="module")
def endpoint():
    server, endpoint_url = start_in_process()
    yield endpoint_url
    server.stop()


def test_deleting_a_missing_scaling_policy_answers_object_not_found(endpoint):
    def client_for(service: str):
        return boto3.client(service, endpoint_url=endpoint, region_name="ap-northeast-2",
                            aws_access_key_id="test", aws_secret_access_key="test")

    ecs = client_for("ecs")
    ecs.create_cluster(clusterName="cluster")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}])
    ecs.create_service(cluster="cluster", serviceName="web", taskDefinition="web", desiredCount=1)
    client = client_for("application-autoscaling")
    target = dict(ServiceNamespace="ecs", ResourceId="service/cluster/web", ScalableDimension="ecs:service:DesiredCount")
    client.register_scalable_target(**target, MinCapacity=1, MaxCapacity=3)
    client.put_scaling_policy(**target, PolicyName="cpu", PolicyType="TargetTrackingScaling",
                              TargetTrackingScalingPolicyConfiguration={
                                  "TargetValue": 70, "PredefinedMetricSpecification": {
                                      "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
    client.delete_scaling_policy(**target, PolicyName="cpu")
    with pytest.raises(ClientError) as caught:
        client.delete_scaling_policy(**target, PolicyName="cpu")
    assert caught.value.response["Error"]["Code"] == "ObjectNotFoundException"
    assert client.list_tags_for_resource(ResourceARN=client.describe_scalable_targets(
        ServiceNamespace="ecs")["ScalableTargets"][0]["ScalableTargetARN"])["Tags"] == {}

