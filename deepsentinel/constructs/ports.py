"""The containers' ports, shared by the network's target groups, the security groups' rules and the ECS task
definitions, and checked by the live tests without importing cdktf (whose first import starts jsii's runtime)."""

FRONTEND_PORT = 3000
BACKEND_PORT = 8000
