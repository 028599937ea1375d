"""Storage: the five S3 buckets and RDS PostgreSQL 16 (its master secret kept by RDS).

The Django key is not here: the account stack holds it (constructs/app_secrets.py) and the environment stack
looks it up, so no plan of an environment generates or reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import Token
from cdktf_cdktf_provider_aws.db_instance import DbInstance
from cdktf_cdktf_provider_aws.db_parameter_group import DbParameterGroup, DbParameterGroupParameter
from cdktf_cdktf_provider_aws.db_subnet_group import DbSubnetGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_cors_configuration import (
    S3BucketCorsConfiguration,
    S3BucketCorsConfigurationCorsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
    S3BucketLifecycleConfigurationRuleTransition,
)
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA, S3BucketVersioningVersioningConfiguration
from constructs import Construct

from deepsentinel.constructs.access_logs import S3_LOG_PREFIX
from deepsentinel.constructs.buckets import RAW_VIDEOS, BucketSpec, bucket_specs
from deepsentinel.constructs.policies import assume_role_policy, tls_only_bucket_policy
from deepsentinel.settings import PlatformSettings

ABORT_MULTIPART_AFTER_DAYS = 7
# Browser uploads: the site PUTs a video (or its parts, for a presigned multipart upload) straight to the raw
# bucket. The preflight asks for the headers the upload sets (Content-Type, an MD5 or x-amz-checksum-*); the page
# reads each part's ETag, which CompleteMultipartUpload needs ("Elements of a CORS configuration", Amazon S3 User
# Guide: ExposeHeader, AllowedHeader with one wildcard). The preflight answer is cached for an hour.
UPLOAD_BUCKET = RAW_VIDEOS
UPLOAD_CORS_METHODS = ("PUT",)
UPLOAD_CORS_HEADERS = ("content-type", "content-md5", "x-amz-*")
UPLOAD_CORS_EXPOSE_HEADERS = ("ETag",)
UPLOAD_CORS_MAX_AGE_SECONDS = 3600
ENHANCED_MONITORING_SECONDS = 60
DB_NAME = "deepsentinel"
DB_USERNAME = "deepsentinel"
# pgvector itself is enabled per database (CREATE EXTENSION vector); these make its index builds and
# nearest-neighbour scans practical on a small instance.
PGVECTOR_PARAMETERS = {
    "shared_preload_libraries": ("pg_stat_statements", "pending-reboot"),
    "maintenance_work_mem": ("131072", "immediate"),  # KB: HNSW index builds
    "work_mem": ("16384", "immediate"),
    "rds.force_ssl": ("1", "immediate"),
}


@dataclass(frozen=True, kw_only=True)
class StorageProps:
    settings: PlatformSettings
    private_subnet_ids: list[str]
    rds_security_group_id: str
    kms_key_arn: str  # buckets, the database, Performance Insights and its master secret
    access_log_bucket: str | None = None  # server access logs of every bucket (under s3/); None: none
    # The ALB's DNS name: without settings.upload_cors_origins or a domain, the site's origin (http://<name>) may
    # upload. None (and no domain, no setting): the raw bucket gets no CORS rule, so browsers cannot upload.
    alb_dns_name: str | None = None


class Storage(Construct):
    """Buckets are private, encrypted, TLS-only; the DB password is generated and kept by RDS itself."""

    bucket_names: dict[str, str]  # purpose -> name, for every entry of BUCKETS
    bucket_arns: dict[str, str]
    upload_cors_origins: list[str]  # origins allowed to PUT to the raw bucket; []: no CORS rule
    db_instance_identifier: str
    db_host: str
    db_port: str
    db_name: str
    db_secret_arn: str  # RDS-managed secret {"username", "password"}: never in Terraform state

    def __init__(self, scope: Construct, id_: str, *, props: StorageProps) -> None:
        super().__init__(scope, id_)
        s = props.settings
        self.bucket_names, self.bucket_arns = {}, {}
        self.upload_cors_origins = upload_cors_origins(s, props.alb_dns_name)
        for spec in bucket_specs(s):
            bucket = self._bucket(s, spec, props)
            self.bucket_names[spec.purpose] = bucket.bucket
            self.bucket_arns[spec.purpose] = bucket.arn
            if spec.purpose == UPLOAD_BUCKET and self.upload_cors_origins:
                S3BucketCorsConfiguration(
                    self,
                    f"{spec.purpose}-cors",
                    bucket=bucket.id,
                    cors_rule=[
                        S3BucketCorsConfigurationCorsRule(
                            id="browser-uploads",
                            allowed_origins=self.upload_cors_origins,
                            allowed_methods=list(UPLOAD_CORS_METHODS),
                            allowed_headers=list(UPLOAD_CORS_HEADERS),
                            expose_headers=list(UPLOAD_CORS_EXPOSE_HEADERS),
                            max_age_seconds=UPLOAD_CORS_MAX_AGE_SECONDS,
                        )
                    ],
                )
        self._database(s, props)

    def _bucket(self, s: PlatformSettings, spec: BucketSpec, props: StorageProps) -> S3Bucket:
        p = spec.purpose
        bucket = S3Bucket(
            self,
            p,
            bucket=s.bucket_name(p),
            force_destroy=not s.deletion_protection,
            tags={"Name": s.bucket_name(p), "Purpose": p},
        )
        S3BucketOwnershipControls(
            self,
            f"{p}-ownership",
            bucket=bucket.id,
            rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
        )
        S3BucketPublicAccessBlock(
            self,
            f"{p}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            f"{p}-encryption",
            bucket=bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    bucket_key_enabled=True,
                    apply_server_side_encryption_by_default=(
                        S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                            sse_algorithm="aws:kms", kms_master_key_id=props.kms_key_arn
                        )
                    ),
                )
            ],
        )
        # Object events on the default event bus: free until a rule uses them (the Jobs API, audits).
        S3BucketNotification(self, f"{p}-events", bucket=bucket.id, eventbridge=True)
        if props.access_log_bucket:
            S3BucketLoggingA(
                self,
                f"{p}-access-logs",
                bucket=bucket.id,
                target_bucket=props.access_log_bucket,
                target_prefix=f"{S3_LOG_PREFIX}/{bucket.bucket}/",
            )
        S3BucketPolicy(self, f"{p}-tls-only", bucket=bucket.id, policy=tls_only_bucket_policy(bucket.arn))
        if spec.versioned:
            S3BucketVersioningA(
                self,
                f"{p}-versioning",
                bucket=bucket.id,
                versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
            )
        S3BucketLifecycleConfiguration(self, f"{p}-lifecycle", bucket=bucket.id, rule=[self._lifecycle_rule(spec)])
        return bucket

    @staticmethod
    def _lifecycle_rule(spec: BucketSpec) -> S3BucketLifecycleConfigurationRule:
        return S3BucketLifecycleConfigurationRule(
            id=f"{spec.purpose}-retention",
            status="Enabled",
            filter=[S3BucketLifecycleConfigurationRuleFilter()],
            abort_incomplete_multipart_upload=[
                S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                    days_after_initiation=ABORT_MULTIPART_AFTER_DAYS
                )
            ],
            transition=[
                S3BucketLifecycleConfigurationRuleTransition(days=spec.glacier_after_days, storage_class="GLACIER")
            ]
            if spec.glacier_after_days is not None
            else None,  # 0 is a transition on the first day
            expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=spec.expire_after_days)]
            if spec.expire_after_days is not None
            else None,
            noncurrent_version_expiration=[
                S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                    noncurrent_days=spec.noncurrent_expire_after_days
                )
            ]
            if spec.versioned and spec.noncurrent_expire_after_days
            else None,
        )

    def _database(self, s: PlatformSettings, props: StorageProps) -> None:
        subnets = DbSubnetGroup(
            self, "db-subnets", name=s.name("db"), subnet_ids=props.private_subnet_ids, tags={"Name": s.name("db")}
        )
        parameters = DbParameterGroup(
            self,
            "db-parameters",
            name=s.name("postgres16"),
            family="postgres16",
            description="PostgreSQL 16 with pgvector-friendly memory settings",
            parameter=[
                DbParameterGroupParameter(name=k, value=v, apply_method=m) for k, (v, m) in PGVECTOR_PARAMETERS.items()
            ],
        )
        db = DbInstance(
            self,
            "db",
            identifier=s.name("postgres"),
            engine="postgres",
            engine_version="16",
            instance_class=s.db_instance_class,
            allocated_storage=s.db_allocated_storage_gb,
            max_allocated_storage=s.db_max_allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=props.kms_key_arn,
            db_name=DB_NAME,
            username=DB_USERNAME,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=props.kms_key_arn,
            iam_database_authentication_enabled=True,
            monitoring_interval=ENHANCED_MONITORING_SECONDS if s.db_enhanced_monitoring else None,
            monitoring_role_arn=self._monitoring_role(s) if s.db_enhanced_monitoring else None,
            performance_insights_kms_key_id=props.kms_key_arn if s.environment == "prod" else None,
            db_subnet_group_name=subnets.name,
            parameter_group_name=parameters.name,
            vpc_security_group_ids=[props.rds_security_group_id],
            publicly_accessible=False,
            multi_az=s.db_multi_az,
            deletion_protection=s.deletion_protection,
            backup_retention_period=s.db_backup_retention_days,
            backup_window=s.db_backup_window,
            maintenance_window=s.db_maintenance_window,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            performance_insights_enabled=s.environment == "prod",
            skip_final_snapshot=not s.deletion_protection,
            final_snapshot_identifier=s.name("postgres-final") if s.deletion_protection else None,
            enabled_cloudwatch_logs_exports=["postgresql"],
            tags={"Name": s.name("postgres")},
        )
        self.db_instance_identifier = db.identifier
        self.db_host = db.address
        self.db_port = Token.as_string(db.port)
        self.db_name = DB_NAME
        self.db_secret_arn = db.master_user_secret.get(0).secret_arn

    def _monitoring_role(self, s: PlatformSettings) -> str:
        role = IamRole(
            self,
            "db-monitoring-role",
            name=s.name("rds-monitoring"),
            assume_role_policy=assume_role_policy("monitoring.rds.amazonaws.com"),
        )
        IamRolePolicyAttachment(
            self,
            "db-monitoring-policy",
            role=role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
        )
        return role.arn


def upload_cors_origins(s: PlatformSettings, alb_dns_name: str | None) -> list[str]:
    """Where the site is served, so where browsers upload from: the setting when given, else https://{domain_name}
    (the one name the ALB alias and certificate cover), else the ALB's plain-HTTP origin, else none."""
    if s.upload_cors_origins:
        return list(s.upload_cors_origins)
    if s.domain_name:
        return [f"https://{s.domain_name}"]
    return [f"http://{alb_dns_name}"] if alb_dns_name else []
