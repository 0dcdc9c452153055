# The push queue and command retention on the API side.
#
# Issue 9 #10 (contract C1): one pending push per enrollment. An id goes to
# mdm:push only when SADD mdm:push:pending said it was not there yet; the
# worker takes it out of the set when it takes it off the list. N enqueues
# and pushes leave one entry, not N.
#
# Contract C6: the command (mdm:cmd:UUID) and its target set expire after
# mdm_result_ttl (default 30 days), or when the command expires if later.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;

use MIME::Base64 qw(encode_base64);

no_shuffle();

our $KEY = 'push-key';
our $AUTH = 'Authorization: Basic ' . encode_base64("nanomdm:$KEY", '');

sub cmd {
    my ($uuid) = @_;
    return qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n}
         . qq{<key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict>\n}
         . qq{<key>CommandUUID</key><string>$uuid</string>\n</dict>\n</plist>};
}

sub enr { [ "HSET", "mdm:enr:{$_[0]}", "type", "Device", "enabled", "1" ] }

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(cmd enr);
}

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => qq{
        location /v1/ { mdm_api; mdm_api_key $KEY; }
        location /short/ { mdm_api; mdm_api_key $KEY; mdm_result_ttl 1h; }
    },
    more_headers => $AUTH,
);

run_tests();

__DATA__

=== TEST 1: five enqueues and three pushes for one enrollment: one entry in mdm:push
--- redis_setup eval
[ [ "FLUSHALL" ], enr("P-1") ]
--- request eval
[ (map { "PUT /v1/enqueue/P-1\n" . cmd("PC-$_") } 1 .. 5),
  "GET /v1/push/P-1", "POST /v1/push/P-1", "PUT /v1/push/P-1" ]
--- error_code eval
[ (200) x 8 ]
--- json eval
[ ({ status => exact({ "P-1" => exact({ push_result => "queued" }) }) }) x 8 ]
--- redis_check eval
[ [ "LRANGE mdm:push 0 -1", [ "P-1" ] ],
  [ "SMEMBERS mdm:push:pending", [ "P-1" ] ],
  [ "LRANGE mdm:q:{P-1} 0 -1", [ map { "PC-$_" } 1 .. 5 ] ] ]



=== TEST 2: one enqueue to several enrollments, then another naming some again: each waits once, in first-push order
--- redis_setup eval
[ [ "FLUSHALL" ], enr("P-A"), enr("P-B"), enr("P-C"), enr("P-D") ]
--- request eval
[ "PUT /v1/enqueue/P-A,P-B,P-C\n" . cmd("M-1"), "PUT /v1/enqueue/P-C,P-D,P-A,P-B\n" . cmd("M-2"),
  "GET /v1/push/P-D,P-B" ]
--- error_code eval
[ 200, 200, 200 ]
--- redis_check eval
[ [ "LRANGE mdm:push 0 -1", [ "P-A", "P-B", "P-C", "P-D" ] ],
  [ "SCARD mdm:push:pending", "4" ] ]



=== TEST 3: once the worker has taken an id (LPOP + SREM, its side of the contract), the next push queues it again
--- redis_setup eval
[ [ "FLUSHALL" ], enr("P-1"), [ "SADD", "mdm:push:pending", "P-1" ], [ "RPUSH", "mdm:push", "P-1" ] ]
--- request eval
[ "GET /v1/push/P-1", "GET /v1/push/P-1" ]
--- error_code eval
[ 200, 200 ]
--- after_each eval
[ sub {
    Test::More::is(redis("LPOP", "mdm:push"), "P-1", "the worker takes it");
    redis("SREM", "mdm:push:pending", "P-1");
  }, undef ]
--- redis_check eval
[ [ "LRANGE mdm:push 0 -1", [ "P-1" ] ], [ "SMEMBERS mdm:push:pending", [ "P-1" ] ] ]



=== TEST 4: nopush=1 (or yes/true) queues no push; unknown enrollments are not pushed
--- redis_setup eval
[ [ "FLUSHALL" ], enr("P-1") ]
--- request eval
[ "PUT /v1/enqueue/P-1?nopush=1\n" . cmd("N-1"), "PUT /v1/enqueue/P-1?nopush=yes\n" . cmd("N-2"),
  "PUT /v1/enqueue/P-1?nopush=true\n" . cmd("N-3"), "GET /v1/push/NOBODY" ]
--- error_code eval
[ 200, 200, 200, 400 ]
--- redis_check eval
[ [ "EXISTS mdm:push mdm:push:pending", "0" ],
  [ "LLEN mdm:q:{P-1}", "3" ] ]



=== TEST 5: the command and its targets expire after mdm_result_ttl: 30 days by default
--- redis_setup eval
[ [ "FLUSHALL" ], enr("P-1"), enr("P-2") ]
--- request eval
"PUT /v1/enqueue/P-1,P-2\n" . cmd("TTL-1")
--- error_code: 200
--- redis_check eval
[ [ "TTL mdm:cmd:TTL-1", sub { $_[0] > 2592000 - 60 && $_[0] <= 2592000 } ],
  [ "TTL mdm:cmd:TTL-1:targets", sub { $_[0] > 2592000 - 60 && $_[0] <= 2592000 } ],
  [ "TTL mdm:q:{P-1}", "-1" ] ]



=== TEST 6: mdm_result_ttl 1h: an hour; a command that expires later is kept until then
--- redis_setup eval
[ [ "FLUSHALL" ], enr("P-1") ]
--- request eval
[ "PUT /short/v1/enqueue/P-1\n" . cmd("TTL-2"), "PUT /short/v1/enqueue/P-1?expires=7200\n" . cmd("TTL-3"),
  "PUT /short/v1/enqueue/P-1?expires=60\n" . cmd("TTL-4") ]
--- error_code eval
[ 200, 200, 200 ]
--- redis_check eval
[ [ "TTL mdm:cmd:TTL-2", sub { $_[0] > 3540 && $_[0] <= 3600 } ],
  [ "TTL mdm:cmd:TTL-2:targets", sub { $_[0] > 3540 && $_[0] <= 3600 } ],
  [ "TTL mdm:cmd:TTL-3", sub { $_[0] > 7140 && $_[0] <= 7200 } ],
  [ "TTL mdm:cmd:TTL-3:targets", sub { $_[0] > 7140 && $_[0] <= 7200 } ],
  [ "TTL mdm:cmd:TTL-4", sub { $_[0] > 3540 && $_[0] <= 3600 } ] ]



=== TEST 7: a refused enqueue (unknown enrollments only) stores nothing, so nothing to expire
--- redis_setup eval
[ [ "FLUSHALL" ] ]
--- request eval
"PUT /v1/enqueue/NOBODY\n" . cmd("TTL-5")
--- error_code: 400
--- redis_check eval
[ [ "EXISTS mdm:cmd:TTL-5 mdm:cmd:TTL-5:targets", "0" ] ]



=== TEST 8: mdm_result_ttl must be a time
--- config
location /v1/ { mdm_api; mdm_api_key x; mdm_result_ttl soon; }
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*"mdm_result_ttl" directive invalid value/
