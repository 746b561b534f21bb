/*
 * exit_now.c — bench_exit_now, a program that exits with 0 at once: no
 * dynamic loader, no libc, no start-up code, one system call.
 *
 * bench_sensor execs it to measure the monitor's CPU at 1,000 execs a
 * second.  /bin/true costs 3-6 ms of CPU per exec on a machine whose system
 * calls are slow (its loader maps and relocates libc), so two cores could
 * not run 1,000 a second of it, and the exec path's batches, which fill
 * with the rate, would have been measured at a third of it.
 */
void _start(void) __attribute__((noreturn, used));

void _start(void)
{
#if defined(__x86_64__)
	__asm__ volatile("mov $60, %eax\n\txor %edi, %edi\n\tsyscall");
#elif defined(__aarch64__)
	__asm__ volatile("mov x8, #93\n\tmov x0, #0\n\tsvc #0");
#else
#error "bench_exit_now: this architecture's exit system call is not written here"
#endif
	for (;;)
		;
}
