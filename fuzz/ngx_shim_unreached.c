
/*
 * Copyright (C) ngx_mdm contributors
 *
 * NGINX CORE functions that no fuzz target reaches: the request life
 * cycle, configuration parsing, events, the resolver, thread pools.  The
 * targets link all of the module's files (the admin API's endpoint table
 * names every handler, and those name the rest), so these must exist;
 * each one aborts, so a target that ever reaches one fails loudly instead
 * of running something that is not nginx.  No nginx header is included:
 * only the names matter to the linker, and none of these is ever called.
 */


#include <stdio.h>
#include <stdlib.h>


#define NGX_SHIM_UNREACHED(name)                                             \
    void name(void);                                                         \
    void name(void)                                                          \
    {                                                                        \
        fprintf(stderr, "ngx_shim: nginx's " #name "() was reached: the "    \
                "fuzz shim does not provide it\n");                          \
        abort();                                                             \
    }

NGX_SHIM_UNREACHED(ngx_alloc_chain_link)
NGX_SHIM_UNREACHED(ngx_atoof)
NGX_SHIM_UNREACHED(ngx_atotm)
NGX_SHIM_UNREACHED(ngx_conf_full_name)
NGX_SHIM_UNREACHED(ngx_conf_log_error)
NGX_SHIM_UNREACHED(ngx_conf_set_flag_slot)
NGX_SHIM_UNREACHED(ngx_conf_set_num_slot)
NGX_SHIM_UNREACHED(ngx_conf_set_sec_slot)
NGX_SHIM_UNREACHED(ngx_conf_set_str_slot)
NGX_SHIM_UNREACHED(ngx_create_temp_buf)
NGX_SHIM_UNREACHED(ngx_encode_base64url)
NGX_SHIM_UNREACHED(ngx_free_connection)
NGX_SHIM_UNREACHED(ngx_get_connection)
NGX_SHIM_UNREACHED(ngx_http_add_variable)
NGX_SHIM_UNREACHED(ngx_http_auth_basic_user)
NGX_SHIM_UNREACHED(ngx_http_discard_request_body)
NGX_SHIM_UNREACHED(ngx_http_finalize_request)
NGX_SHIM_UNREACHED(ngx_http_map_uri_to_path)
NGX_SHIM_UNREACHED(ngx_http_output_filter)
NGX_SHIM_UNREACHED(ngx_http_read_client_request_body)
NGX_SHIM_UNREACHED(ngx_http_run_posted_requests)
NGX_SHIM_UNREACHED(ngx_http_send_header)
NGX_SHIM_UNREACHED(ngx_http_set_content_type)
NGX_SHIM_UNREACHED(ngx_http_set_disable_symlinks)
NGX_SHIM_UNREACHED(ngx_http_test_reading)
NGX_SHIM_UNREACHED(ngx_inet_get_port)
NGX_SHIM_UNREACHED(ngx_open_cached_file)
NGX_SHIM_UNREACHED(ngx_parse_addr)
NGX_SHIM_UNREACHED(ngx_parse_size)
NGX_SHIM_UNREACHED(ngx_parse_time)
NGX_SHIM_UNREACHED(ngx_parse_url)
NGX_SHIM_UNREACHED(ngx_ptocidr)
NGX_SHIM_UNREACHED(ngx_rbtree_delete)
NGX_SHIM_UNREACHED(ngx_rbtree_insert)
NGX_SHIM_UNREACHED(ngx_read_file)
NGX_SHIM_UNREACHED(ngx_resolve_name)
NGX_SHIM_UNREACHED(ngx_resolve_name_done)
NGX_SHIM_UNREACHED(ngx_resolve_start)
NGX_SHIM_UNREACHED(ngx_resolver_strerror)
NGX_SHIM_UNREACHED(ngx_shared_memory_add)
NGX_SHIM_UNREACHED(ngx_shmtx_lock)
NGX_SHIM_UNREACHED(ngx_shmtx_unlock)
NGX_SHIM_UNREACHED(ngx_slab_alloc)
NGX_SHIM_UNREACHED(ngx_slab_alloc_locked)
NGX_SHIM_UNREACHED(ngx_slab_calloc)
NGX_SHIM_UNREACHED(ngx_slab_free_locked)
NGX_SHIM_UNREACHED(ngx_sock_ntop)
NGX_SHIM_UNREACHED(ngx_strlow)
NGX_SHIM_UNREACHED(ngx_thread_pool_add)
NGX_SHIM_UNREACHED(ngx_thread_task_alloc)
NGX_SHIM_UNREACHED(ngx_thread_task_post)
