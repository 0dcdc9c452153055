# mdm_asset: DDM asset data and legacy profiles for enrolled devices only,
# authenticated like check-ins (the TLS client certificate, or the header
# of a TLS terminator), with the exact Content-Type, size and SHA-256 an
# asset declaration promises. Blobs come from PUT /v1/assets/NAME, files
# from the location's alias. Refusals are 403, never 401. Blocks build on
# each other: one Redis.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempdir);

no_shuffle();

our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';
our $API = 'Authorization: Basic ' . encode_base64('nanomdm:secret', '');
our $PROFILE = join '', map { chr(($_ * 7) % 256) } 1 .. 3000;   # binary
our $ASSETS = tempdir('mdm-assets-XXXXXX', TMPDIR => 1, CLEANUP => 1);
our $META;

{
    open my $fh, '>', "$ASSETS/readme.txt" or die $!;
    print {$fh} "hello from a file\n";
    close $fh;
    $ENV{TEST_NGINX_ASSETS} = $ASSETS;
    my $c = device_cert('mac');
    $ENV{TEST_NGINX_MAC_CERT} = $c->{cert};
    $ENV{TEST_NGINX_MAC_KEY} = $c->{key};
    my $s = device_cert('stranger');
    $ENV{TEST_NGINX_STRANGER_CERT} = $s->{cert};
    $ENV{TEST_NGINX_STRANGER_KEY} = $s->{key};
}

mdm_defaults(
    http_config => q{
        mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;

        # the device-facing TLS endpoint
        server {
            listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
            server_name tls;
            ssl_certificate $TEST_NGINX_PKI/server.pem;
            ssl_certificate_key $TEST_NGINX_PKI/server.key;
            ssl_verify_client optional_no_ca;
            mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;

            location /mdm/assets/ {
                mdm_asset;
                mdm_identity tls;
                alias $TEST_NGINX_ASSETS/;
            }
        }
    },
    config => q{
        mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
        location = /mdm/checkin { mdm_checkin; }
        location /v1/ { mdm_api; mdm_api_key secret; client_max_body_size 20m; }
        location /mdm/assets/ {
            mdm_asset;
            mdm_identity header X-Client-Cert from=127.0.0.1;
            alias $TEST_NGINX_ASSETS/;
            types { text/plain txt; }
        }
        # devices over TLS, each with its certificate
        location /tls/mac/ {
            proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/mdm/assets/;
            proxy_ssl_certificate $TEST_NGINX_MAC_CERT;
            proxy_ssl_certificate_key $TEST_NGINX_MAC_KEY;
            proxy_ssl_session_reuse off;
        }
        location /tls/stranger/ {
            proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/mdm/assets/;
            proxy_ssl_certificate $TEST_NGINX_STRANGER_CERT;
            proxy_ssl_certificate_key $TEST_NGINX_STRANGER_KEY;
            proxy_ssl_session_reuse off;
        }
        location /tls/none/ {
            proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/mdm/assets/;
            # a kept session is not freed at exit (LeakSanitizer's noise)
            proxy_ssl_session_reuse off;
        }
        location = /t { return 204; }
    },
);

sub http {
    my ($method, $path, $body, $headers) = @_;
    return concurrent_requests(Test::Nginx::Socket::server_port(),
        [ http_request($method, $path, $body, $headers) ], timeout => 20)->[0];
}

sub checkin {
    my ($vector) = @_;
    my $body = plist_set(vector($vector), UDID => $MAC);
    return http('PUT', '/mdm/checkin', $body, [
        'Content-Type' => $t::MDM::CheckinType,
        'Mdm-Signature' => mdm_signature($body, 'mac') ]);
}

sub hdr { 'X-Client-Cert: ' . rfc9440_header($_[0]) }

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(hdr sha256_hex);
}

run_tests();

__DATA__

=== TEST 1: PUT /v1/assets/NAME stores a blob with its Content-Type; GET tells its size and SHA-256
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    my $r = ::http('PUT', '/v1/assets/profile.mobileconfig', $::PROFILE,
        [ Authorization => (split /: /, $::API)[1], 'Content-Type' => 'application/x-apple-aspen-config' ]);
    Test::More::is($r->{status}, 201, 'created');
    $r = ::http('GET', '/v1/assets/profile.mobileconfig', undef,
        [ Authorization => (split /: /, $::API)[1] ]);
    Test::More::is($r->{status}, 200);
    $::META = JSON::PP->new->decode($r->{body});
    Test::More::is_deeply($::META, { content_type => 'application/x-apple-aspen-config',
        size => length $::PROFILE, sha256 => sha256_hex($::PROFILE),
        updated_at => $::META->{updated_at} }, 'content type, size, SHA-256');
    # the asset declaration that promises them
    $r = ::http('PUT', '/v1/ddm/declarations', JSON::PP->new->encode({
        Type => 'com.apple.asset.data', Identifier => 'com.example.asset.profile',
        Payload => { Reference => {
            DataURL => 'https://mdm.example.com/mdm/assets/profile.mobileconfig',
            ContentType => $::META->{content_type}, Size => $::META->{size},
            'Hash-SHA-256' => $::META->{sha256} },
          Authentication => { Type => 'MDM' } } }),
        [ Authorization => (split /: /, $::API)[1] ]);
    Test::More::is($r->{status}, 204, 'the asset declaration');
    # and a legacy profile fetched the same way
    $r = ::http('PUT', '/v1/ddm/declarations', JSON::PP->new->encode({
        Type => 'com.apple.configuration.legacy', Identifier => 'com.example.legacy',
        Payload => { ProfileURL => 'https://mdm.example.com/mdm/assets/profile.mobileconfig' } }),
        [ Authorization => (split /: /, $::API)[1] ]);
    Test::More::is($r->{status}, 204, 'the legacy profile declaration');
    # the device enrolls (binds its certificate)
    Test::More::is(::checkin('nanomdm/mdm/testdata/Authenticate.2.plist')->{status}, 200);
    Test::More::is(::checkin('nanomdm/mdm/testdata/TokenUpdate.2.plist')->{status}, 200);
}



=== TEST 2: the enrolled device (terminator's header) gets exactly what the declaration promises
--- request
GET /mdm/assets/profile.mobileconfig
--- more_headers eval
hdr('mac')
--- error_code: 200
--- response_headers eval
"Content-Type: application/x-apple-aspen-config\nContent-Length: " . length($::PROFILE)
--- response_body_like eval
qr/\A\Q$::PROFILE\E\z/s
--- no_error_log
[error]



=== TEST 3: the same over TLS with the device's client certificate
--- request
GET /tls/mac/profile.mobileconfig
--- error_code: 200
--- response_headers
Content-Type: application/x-apple-aspen-config
--- response_body_like eval
qr/\A\Q$::PROFILE\E\z/s
--- no_error_log
[error]



=== TEST 4: a file from the location's alias, its type from "types"
--- request
GET /mdm/assets/readme.txt
--- more_headers eval
hdr('mac')
--- error_code: 200
--- response_headers
Content-Type: text/plain
--- response_body
hello from a file



=== TEST 5: without any identity: 403 (never 401) and one log line
--- request
GET /mdm/assets/profile.mobileconfig
--- error_code: 403
--- grep_error_log eval
qr/\[error\].*?(?=, client: )/
--- grep_error_log_out eval
qr/\A[^\n]*answered 403[^\n]*\n\z/



=== TEST 6: over TLS without a client certificate: 403
--- request
GET /tls/none/profile.mobileconfig
--- error_code: 403



=== TEST 7: a valid certificate of no enrollment: 403 and one log line
--- request
GET /mdm/assets/profile.mobileconfig
--- more_headers eval
hdr('stranger')
--- error_code: 403
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 403: certificate of no enrollment



=== TEST 8: the same over TLS: 403
--- request
GET /tls/stranger/profile.mobileconfig
--- error_code: 403



=== TEST 9: a certificate of another CA: 403
--- request eval
"GET /mdm/assets/profile.mobileconfig"
--- more_headers eval
"X-Client-Cert: " . rfc9440_header(device_cert('rogue', issuer => 'rogue'))
--- error_code: 403



=== TEST 10: an unknown name: 404; a bad one: 404
--- request eval
[ "GET /mdm/assets/nothing.bin", "GET /mdm/assets/a%20b" ]
--- more_headers eval
[ hdr('mac'), hdr('mac') ]
--- error_code eval
[ 404, 404 ]



=== TEST 11: a checked-out device: 403
--- request
GET /mdm/assets/profile.mobileconfig
--- more_headers eval
hdr('mac')
--- redis_setup eval
[ [ 'HSET', "mdm:enr:{$::MAC}", 'enabled', '0' ] ]
--- error_code: 403
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out eval
"answered 403: device $::MAC is not enrolled with this certificate\n"



=== TEST 12: a blocked device: 403
--- request
GET /mdm/assets/profile.mobileconfig
--- more_headers eval
hdr('mac')
--- redis_setup eval
[ [ 'HSET', "mdm:enr:{$::MAC}", 'enabled', '1' ], [ 'SET', "mdm:block:{$::MAC}", '1' ] ]
--- error_code: 403
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out eval
"answered 403: device $::MAC blocked\n"



=== TEST 13: mdm_identity off serves no one: 403
--- config
location /off/assets/ {
    mdm_asset;
    mdm_identity off;
    mdm_cert_auth off;
}
--- request
GET /off/assets/profile.mobileconfig
--- redis_setup eval
[ [ 'DEL', "mdm:block:{$::MAC}" ] ]
--- error_code: 403



=== TEST 14: POST: 405
--- request
POST /mdm/assets/profile.mobileconfig
x
--- more_headers eval
hdr('mac')
--- error_code: 405



=== TEST 15: API: an asset over 16 MiB: 413; without Content-Type: 400; a bad name: 400
--- request eval
[ "PUT /v1/assets/big\n" . ('x' x (16 * 1024 * 1024 + 1)),
  "PUT /v1/assets/noct\nabc",
  "PUT /v1/assets/a%20b\nabc" ]
--- more_headers eval
[ "$::API\nContent-Type: application/octet-stream", $::API,
  "$::API\nContent-Type: application/octet-stream" ]
--- error_code eval
[ 413, 400, 400 ]
--- timeout: 60



=== TEST 16: API: DELETE an asset; the device then gets 404
--- request eval
[ "DELETE /v1/assets/profile.mobileconfig", "GET /mdm/assets/profile.mobileconfig" ]
--- more_headers eval
[ $::API, hdr('mac') ]
--- error_code eval
[ 204, 404 ]



=== TEST 17: API: assets are bounded: 1,000 blobs, 1 GiB together (409, nothing stored); replacing one counts its new size only
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    my @auth = (Authorization => (split /: /, $::API)[1], 'Content-Type' => 'text/plain');
    my $put = sub { ::http('PUT', "/v1/assets/$_[0]", $_[1], [ @auth ]) };
    redis('DEL', 'mdm:ddm:assets');
    Test::More::is($put->('cap-a', 'aaaa')->{status}, 201, 'an asset');
    Test::More::is(redis('HGET', 'mdm:ddm:assets', 'cap-a'), 4, 'its size counted');
    redis('HSET', 'mdm:ddm:assets', 'cap-huge', 1024 * 1024 * 1024 - 4);
    my $r = $put->('cap-b', 'b');
    Test::More::is($r->{status}, 409, 'one byte past 1 GiB together: 409');
    Test::More::like($r->{body}, qr/1073741825 bytes/, 'saying how much');
    Test::More::is(redis('EXISTS', 'mdm:ddm:asset:cap-b'), 0, 'nothing stored');
    Test::More::is($put->('cap-a', 'AAAA')->{status}, 200, 'replacing one with as many bytes: 200');
    redis('HDEL', 'mdm:ddm:assets', 'cap-huge');
    redis('EVAL', q{for i = 1, 999 do redis.call('HSET', 'mdm:ddm:assets', 'fake' .. i, 1) end}, 0);
    $r = $put->('cap-c', 'c');
    Test::More::is($r->{status}, 409, 'a 1,001st asset: 409');
    Test::More::like($r->{body}, qr/already 1000 assets/, 'saying why');
    Test::More::is($put->('cap-a', 'again')->{status}, 200, 'an existing one still replaces');
    Test::More::is(::http('DELETE', '/v1/assets/cap-a', undef, [ @auth[0, 1] ])->{status}, 204, 'DELETE');
    Test::More::is(redis('HEXISTS', 'mdm:ddm:assets', 'cap-a'), 0, 'its size no longer counted');
    redis('DEL', 'mdm:ddm:assets');
}
