/* FakeHypervisor: a program that only waits, copied to a name like "cloud-hypervisor" so
 * that /proc/PID/exe and /proc/PID/cmdline look like a running hypervisor's. Used where the
 * real hypervisor cannot run here (cloud-hypervisor, firecracker, crosvm...). */
#include <unistd.h>
int main(void) { for (;;) pause(); }
