"""Test doubles for the hypervisors' control sockets (QMP, cloud-hypervisor, firecracker)."""
