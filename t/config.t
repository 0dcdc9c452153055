# Configuration: a wrong ngx_mdm configuration stops nginx at start with one
# clear [emerg] line naming the file and line; the accepted forms start and
# serve.

use Test::Nginx::Socket 'no_plan';
use t::MDM;

no_shuffle();

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        location = /mdm/checkin {
            mdm_checkin;
            mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
        }
    },
    more_headers => "Content-Type: $t::MDM::CheckinType",
);

our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';
our $AUTH = 'nanomdm/mdm/testdata/Authenticate.2.plist';

# "[emerg] ... <text> in /.../nginx.conf:<line>"
sub emerg {
    my ($text) = @_;
    return qr/\[emerg\] \d+#\d+: \Q$text\E in \S+\/nginx\.conf:\d+$/;
}

# After a check-in refused because Redis rejects our password: 2 s of
# check-ins, 5 at a time, while nginx keeps retrying; then the log.
sub wrong_password_burst {
    my ($block) = @_;
    my $body = vector($::AUTH);
    my $req = http_request('PUT', '/mdm/checkin', $body, [
        'Content-Type' => $t::MDM::CheckinType,
        'Mdm-Signature' => mdm_signature($body, 'mac'),
    ]);
    my %status;
    my $t0 = Time::HiRes::time();
    while (Time::HiRes::time() - $t0 < 2) {
        my $res = concurrent_requests(server_port_for_client(),
                                      [ ($req) x 5 ]);
        $status{ $_->{status} // 'none' }++ for @$res;
    }
    my $other = join ' ', map { "$_ x$status{$_}" }
                          grep { $_ ne '503' } sort keys %status;
    Test::More::is($other, '',
                   $block->name . ' - every check-in of the burst got 503');

    open my $log, '<', server_root() . '/logs/error.log' or die "error.log: $!";
    my @lines = <$log>;
    my $auth = grep { /mdm: redis AUTH failed/ } @lines;
    my $back = grep { /redis at .* is back/ } @lines;
    Test::More::cmp_ok($auth, '<=', 8, $block->name
        . ' - AUTH failures in ~2.5 s are retried with a growing backoff');
    Test::More::is($back, 0, $block->name
        . ' - a connection whose AUTH fails is not reported as "is back"');
}

# Every block starts with an empty Redis that needs no password.
add_block_preprocessor(sub {
    my $block = shift;
    my $setup = $block->redis_setup;
    my @reset = (['CONFIG', 'SET', 'requirepass', ''], ['FLUSHALL']);
    if (!defined $setup) {
        $block->set_value(redis_setup => \@reset);
    } elsif (ref $setup eq 'ARRAY') {
        $block->set_value(redis_setup => [ @reset, @$setup ]);
    } elsif (!ref $setup) {
        $block->set_value(redis_setup =>
            [ @reset, map { [ Text::ParseWords::shellwords($_) ] }
                          grep { /\S/ && !/^\s*#/ } split /\n/, $setup ]);
    }
});

run_tests();

__DATA__

=== TEST 1: the default configuration starts and serves (sanity)
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 200
--- no_error_log
[error]
[warn]



=== TEST 2: mdm_checkin without mdm_redis
--- http_config
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('mdm_checkin, mdm_connect and mdm_server need "mdm_redis" in http{}')



=== TEST 3: mdm_checkin without mdm_identity_ca (identity defaults to the signature)
--- config
location = /mdm/checkin {
    mdm_checkin;
}
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('mdm_checkin, mdm_connect and mdm_server need "mdm_identity_ca" to verify devices (or "mdm_identity off")')



=== TEST 4: mdm_identity signature without mdm_identity_ca
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity signature;
}
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('mdm_checkin, mdm_connect and mdm_server need "mdm_identity_ca" to verify devices (or "mdm_identity off")')



=== TEST 5: mdm_identity off with mdm_cert_auth left on
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity off;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*"mdm_identity off" needs "mdm_cert_auth off"/



=== TEST 6: mdm_identity off with mdm_cert_auth on, explicitly
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity off;
    mdm_cert_auth on;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*"mdm_identity off" needs "mdm_cert_auth off"/



=== TEST 7: mdm_identity off + mdm_cert_auth off starts, warns, and takes unsigned check-ins
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity off;
    mdm_cert_auth off;
}
--- request eval
checkin_request($::AUTH)
--- error_code: 200
--- redis_check eval
[
  [ "HGET mdm:enr:{$::MAC} type", "Device" ],
  [ cert_bindings($::MAC), [] ],
]
--- error_log eval
qr/\[warn\] .*device requests without device identity/
--- no_error_log
[error]



=== TEST 8: mdm_identity off and mdm_cert_auth off inherited from http{}
--- http_config
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
mdm_identity off;
mdm_cert_auth off;
--- config
location = /mdm/checkin {
    mdm_checkin;
}
--- request eval
checkin_request($::AUTH)
--- error_code: 200
--- no_error_log
[error]



=== TEST 9: mdm_identity_ca inherited from server{}
--- config
mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
location = /mdm/checkin {
    mdm_checkin;
}
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 200
--- no_error_log
[error]



=== TEST 10: mdm_identity bogus
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity bogus;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*invalid identity source "bogus"/



=== TEST 11: mdm_identity header without a header name
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity header;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*invalid identity source "header"/



=== TEST 12: mdm_identity with several sources, one of them unknown
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity signature header X-Client-Cert from=any bogus;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*invalid identity source "bogus"/



=== TEST 13: mdm_identity signature header NAME is accepted
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity signature header X-Client-Cert from=127.0.0.1;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 200
--- no_error_log
[error]



=== TEST 14: mdm_identity twice
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity signature;
    mdm_identity signature;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('"mdm_identity" directive is duplicate')



=== TEST 15: mdm_identity_ca that does not exist
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca /nonexistent/identity-ca.pem;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*cannot open mdm_identity_ca "\/nonexistent\/identity-ca\.pem"/



=== TEST 16: mdm_identity_ca with only a non-self-signed certificate
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/int.pem;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*mdm_identity_ca "[^"]*\/int\.pem" holds no self-signed root certificate/



=== TEST 17: mdm_identity_ca that is not PEM at all
--- user_files
>>> not-a-ca.pem
this is not a certificate
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_SERVER_ROOT/html/not-a-ca.pem;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*holds no self-signed root certificate/



=== TEST 18: mdm_identity_ca twice
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('"mdm_identity_ca" directive is duplicate')



=== TEST 19: mdm_redis twice
--- http_config
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('"mdm_redis" directive is duplicate')



=== TEST 20: mdm_redis with an unknown parameter
--- http_config
mdm_redis 127.0.0.1:6379 foo=1;
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('invalid parameter "foo=1"')



=== TEST 21: mdm_redis timeout=abc
--- http_config
mdm_redis 127.0.0.1:6379 timeout=abc;
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('invalid parameter "timeout=abc"')



=== TEST 22: mdm_redis timeout=0
--- http_config
mdm_redis 127.0.0.1:6379 timeout=0;
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('invalid parameter "timeout=0"')



=== TEST 23: mdm_redis db=abc
--- http_config
mdm_redis 127.0.0.1:6379 db=abc;
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('invalid parameter "db=abc"')



=== TEST 24: mdm_redis db=-1
--- http_config
mdm_redis 127.0.0.1:6379 db=-1;
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('invalid parameter "db=-1"')



=== TEST 25: mdm_redis with a bad address
--- http_config
mdm_redis 127.0.0.1:99999;
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*invalid redis address "127\.0\.0\.1:99999"/



=== TEST 26: mdm_redis without an address
--- http_config
mdm_redis;
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('invalid number of arguments in "mdm_redis" directive')



=== TEST 27: mdm_redis in a server block is not allowed
--- http_config
--- config
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('"mdm_redis" directive is not allowed here')



=== TEST 28: mdm_redis db=5 password-less, timeout=500ms: accepted, and the data lands in db 5
--- http_config
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=5 timeout=500ms;
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 200
--- redis_check eval
[
  [ "SELECT 5", "OK" ],
  [ "HGET mdm:enr:{$::MAC} type", "Device" ],
  [ "XLEN mdm:events", "1" ],
  [ "SELECT 0", "OK" ],
  [ "EXISTS mdm:enr:{$::MAC}", "0" ],
  [ "DBSIZE", "0" ],
]
--- no_error_log
[error]



=== TEST 29: mdm_redis password= against a Redis with requirepass
--- redis_setup
CONFIG SET requirepass secret
--- http_config
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT password=secret db=0 timeout=2s;
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 200
--- redis_check eval
[
  [ "HGET mdm:enr:{$::MAC} type", "Device" ],
  [ "CONFIG SET requirepass ''", "OK" ],
]
--- no_error_log
[error]



=== TEST 30: a wrong password: nginx starts, check-ins get 503, the log says why
--- redis_setup
CONFIG SET requirepass secret
--- http_config
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT password=wrong;
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 503
--- redis_check eval
[
  [ "EXISTS mdm:enr:{$::MAC}", "0" ],
  [ "CONFIG SET requirepass ''", "OK" ],
]
--- error_log eval
[
  qr/\[error\] .*mdm: redis AUTH failed: WRONGPASS/,
  qr/\[error\] .*mdm: Authenticate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 503: redis is not connected/,
]



=== TEST 31: a wrong password: retries back off, never "is back", never a 500
--- redis_setup
CONFIG SET requirepass secret
--- http_config
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT password=wrong;
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 503
--- after_each eval
\&::wrong_password_burst
--- redis_check eval
[ [ "CONFIG SET requirepass ''", "OK" ] ]



=== TEST 32: mdm_redis db=99 (no such database): nginx starts, check-ins get 503
--- http_config
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=99;
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 503
--- error_log eval
[
  qr/\[error\] .*mdm: redis SELECT failed: ERR DB index is out of range/,
  # "not connected" between attempts; a request that comes while an attempt
  # is under way is queued on it and fails with it
  qr/answered 503: redis (?:is not connected|connection lost|cannot serve)/,
]



=== TEST 33: mdm_redis unix:/path is accepted; with nothing there, check-ins get 503
--- http_config
mdm_redis unix:/nonexistent/redis.sock;
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 503
--- error_log eval
[
  qr/\[error\] .*mdm: redis at "\/nonexistent\/redis\.sock" unavailable/,
  qr/answered 503: redis is not connected/,
]



=== TEST 34: mdm_redis localhost (a name) is accepted
--- http_config
mdm_redis localhost:$TEST_NGINX_REDIS_PORT;
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 200
--- no_error_log
[error]



=== TEST 35: mdm_cert_auth maybe
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_cert_auth maybe;
}
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('invalid value "maybe"')



=== TEST 36: mdm_cert_auth retro is accepted
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_cert_auth retro;
}
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 200
--- no_error_log
[error]



=== TEST 37: mdm_user_authenticate sometimes
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_user_authenticate sometimes;
}
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('invalid value "sometimes"')



=== TEST 38: mdm_checkin twice in one location
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('"mdm_checkin" directive is duplicate')



=== TEST 39: mdm_checkin takes no arguments
--- config
location = /mdm/checkin {
    mdm_checkin on;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('invalid number of arguments in "mdm_checkin" directive')



=== TEST 40: mdm_checkin in a server block is not allowed
--- config
mdm_checkin;
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('"mdm_checkin" directive is not allowed here')



=== TEST 41: mdm_signature_skew with an invalid value
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_signature_skew soon;
}
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('"mdm_signature_skew" directive invalid value')



=== TEST 42: mdm_signature_skew 10m is accepted
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_signature_skew 10m;
}
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 200
--- no_error_log
[error]



=== TEST 43: mdm_identity_cache takes a number of certificates
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_identity_cache many;
}
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('invalid mdm_identity_cache "many": a number of certificates up to 10000000, or "off"')



=== TEST 44: mdm_identity_cache's second parameter is verdicts=M or zone=NAME:SIZE
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_identity_cache 1000 keys=10;
}
--- must_die
--- suppress_stderr
--- error_log eval
::emerg('invalid mdm_identity_cache parameter "keys=10": "zone=NAME:SIZE", or "verdicts=" and a number up to 100000000')



=== TEST 45: mdm_identity_cache 100 verdicts=5000 is accepted
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_identity_cache 100 verdicts=5000;
}
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 200
--- no_error_log
[error]
