/*
 * dnsfilter/tls.h - thread-local variables of the query path.
 */
#ifndef DNSFILTER_TLS_H
#define DNSFILTER_TLS_H

/*
 * Thread-local variables read on the query path: the initial-exec model
 * reads them at a fixed offset from the thread pointer instead of calling
 * __tls_get_addr, as a dlopen'ed module would by default (20 instructions
 * a call on every cache hit). glibc keeps static TLS room for dlopen'ed
 * libraries; the module's few words fit it.
 */
#define DNSF_THREAD_LOCAL __thread __attribute__((tls_model("initial-exec")))

#endif
