/* What the h2 layer tells the server about its connections (private to
 * server.c and h2/). */
#ifndef ARBITER_SERVER_PRIV_H
#define ARBITER_SERVER_PRIV_H

struct server;

/* A connection finished closing and was freed; during shutdown the server
 * uses this to notice that every connection is gone. */
void server_conn_gone(struct server *srv);

/* The loop-wide read buffer that every connection shares (see
 * net_conn_accept); sets *|len|. */
unsigned char *server_read_buffer(struct server *srv, size_t *len);

/* True once graceful shutdown started (new connections are refused). */
int server_is_shutting_down(const struct server *srv);

#endif
