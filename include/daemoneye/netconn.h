/*
 * netconn.h — the TCP connections every process holds, read from /proc:
 * each process's socket descriptors (/proc/PID/fd -> "socket:[INODE]")
 * joined by inode with /proc/net/tcp and /proc/net/tcp6 of its network
 * namespace (read through /proc/PID/net/ for a namespace other than ours),
 * as osquery's process_open_sockets does.  This is how connections that
 * were open before the agent started, or made while it was down, are
 * found; the eBPF sensor (bpfevents.h) reports new ones as they happen.
 *
 * Listening sockets are reported as DE_CONN_LISTEN; an established one as
 * DE_CONN_ACCEPT when its local port is a port the same namespace listens
 * on, else DE_CONN_CONNECT.  Other states (SYN_SENT, TIME_WAIT, ...) are
 * not reported.  A process that exits or closes a socket while it is
 * read is skipped quietly.
 *
 * Ownership: connections handed to the callback are borrowed for the call.
 */
#ifndef DAEMONEYE_NETCONN_H
#define DAEMONEYE_NETCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"
#include "daemoneye/record.h"

struct de_netconn_stats {
	size_t processes;   /* processes whose descriptors were listed */
	size_t sockets;	    /* TCP sockets in the tables read */
	size_t connections; /* connections reported */
	size_t namespaces;  /* network namespaces whose tables were read */
};

/*
 * Call fn for every (process, TCP connection) under proc_root (NULL:
 * "/proc"), each stamped with now_ms and from_scan.  Stops at and returns
 * fn's first negative value; fails only when proc_root cannot be listed
 * or on ENOMEM.
 */
int de_netconn_scan(const char *proc_root, int64_t now_ms,
		    int (*fn)(void *ctx, const struct de_connection *c), void *ctx,
		    struct de_netconn_stats *stats, struct de_error *err);

/*
 * Parse the text of /proc/net/tcp (family 4) or tcp6 (family 6): call
 * row(ctx, ...) for each LISTEN or ESTABLISHED socket line.  Lines that do
 * not parse are skipped.  Returns row's first nonzero value, else 0.
 * (Exposed for the fuzz target and tests.)
 */
int de_netconn_parse_table(const char *text, size_t n, int family,
			   int (*row)(void *ctx, const struct de_connection *c, bool listen),
			   void *ctx);

/*
 * addr (4 or 16 bytes by family, network order) as text ("127.0.0.1",
 * "::1"); an IPv4-mapped IPv6 address is written as IPv6.  buf holds at
 * least 46 bytes.
 */
const char *de_netconn_addr_text(int family, const uint8_t *addr, char *buf, size_t size);

#endif
