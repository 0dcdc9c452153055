# The DEP admin API end to end (issue 11): nginx with the module, the real
# mdm-worker, and the mock DEP server (t/servers/dep.pl), set up only
# through /v1/dep/ as an admin would: the token key and a token file made
# for it (the mock's credentials, encrypted with `openssl cms`), the base
# URL, the assigner; then the worker syncs and assigns, the admin watches
# status and devices, asks for a sync now, and calls Apple through the
# proxy (contracts D1-D4, both halves).

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;
use t::MDMServers;
use t::MDMWorker;
use t::MDMDep;

use JSON::PP ();
use MIME::Base64 ();
use Time::HiRes ();

no_shuffle();

our $DEP = start_dep();
dep_ctl($DEP, 'devices', { add => 30 });
dep_ctl($DEP, 'devices', { add => [ 'OWNED-1' ], profile_status => 'pushed', profile_uuid => 'E2E-PROFILE' });

# the worker syncs every 30 minutes: whatever happens sooner is sync-now
our $W = start_worker(worker_id => 'dep-e2e', repush_interval => 0);

my $N = 0;

sub spew {
    my ($f, $data) = @_;
    open my $fh, '>:raw', $f or die "$f: $!";
    print {$fh} $data;
    close $fh;
}

# the mock's token as Apple's portal would give it for the certificate
# $cert: wrapped JSON between BEGIN/END MESSAGE lines, MIME headers, S/MIME
# of indefinite-length BER
sub token_file {
    my ($cert) = @_;
    my $c = $::DEP->{cred};
    my $json = JSON::PP->new->canonical->encode({
        consumer_key => $c->{ck}, consumer_secret => $c->{cs}, access_token => $c->{at},
        access_secret => $c->{as}, access_token_expiry => '2099-01-01T00:00:00Z' });
    my $plain = "Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
              . "-----BEGIN MESSAGE-----\r\n" . join("\r\n", unpack('(a78)*', $json))
              . "\r\n-----END MESSAGE-----\r\n";
    my $d = pki_dir();
    my $n = ++$N;
    spew("$d/e2e-$n.pem", $cert);
    spew("$d/e2e-$n.txt", $plain);
    system("openssl cms -encrypt -stream -aes-128-cbc -binary -in $d/e2e-$n.txt "
           . "-recip $d/e2e-$n.pem -outform SMIME -out $d/e2e-$n.p7m") == 0 or die "openssl cms";
    open my $fh, '<:raw', "$d/e2e-$n.p7m" or die;
    local $/;
    return scalar <$fh>;
}

sub devices_assigned {
    my $r = api('GET', '/v1/dep/devices/acme?assign_result=SUCCESS&limit=1000');
    return scalar @{ $r->{json}{devices} // [] };
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(token_file devices_assigned);
}

api_defaults('e2e-key');
mdm_defaults(config => "location /v1/ { mdm_api; mdm_api_key e2e-key; mdm_dep_proxy_timeout 15s; }");

run_tests();

__DATA__

=== TEST 1: the admin points the name at the mock and sets the profile to assign (before any token: the worker does nothing yet)
--- redis_setup eval
[ [ "DEL", "mdm:dep:names" ] ]
--- request eval
[ "PUT /v1/dep/config/acme\n{\"base_url\": \"$::DEP->{url}/\"}",
  "PUT /v1/dep/assigner/acme?profile_uuid=E2E-PROFILE\n",
  "GET /v1/dep/status/acme" ]
--- error_code eval
[ 200, 200, 200 ]
--- json eval
[ exact({ base_url => $::DEP->{url} }), { profile_uuid => "E2E-PROFILE" },
  { tokens => JSON::PP::false, cursor => JSON::PP::false, devices_known => num(0) } ]



=== TEST 2: the certificate from GET tokenpki, the token file made for it uploaded: the worker fetches every device and assigns the profile to those without one (assign_result SUCCESS)
--- request
GET /v1/dep/tokenpki/acme
--- error_code: 200
--- after_each eval
sub {
    my ($block, $cert) = @_;
    my $r = api('PUT', '/v1/dep/tokenpki/acme', token_file($cert));
    Test::More::is($r->{status}, 200, "the token file is taken") or Test::More::diag($r->{body});
    Test::More::is($r->{json}{consumer_key}, $::DEP->{cred}{ck}, "its consumer key");
    eval { wait_for(sub { devices_assigned() == 30 }, 60, "the 30 devices without a profile are assigned") };
    if ($@) {
        Test::More::diag(api('GET', '/v1/dep/status/acme')->{body});
        Test::More::diag(substr(worker_log($::W), -3000));
        die $@;
    }
    my $st = main::dep_stats($::DEP, 1);
    Test::More::is($st->{assigned_total}, 30, "the mock saw 30 assignments");
    Test::More::ok(!$st->{attempts}{'OWNED-1'}, "the device that has the profile already is left alone");
    Test::More::is_deeply($st->{violations}, [], "no call the mock refused");
    wait_for(sub { (api('GET', '/v1/dep/status/acme')->{json}{phase} // '') eq 'idle' }, 30, "the sync is done");
}



=== TEST 3: status and devices as the admin sees them
--- request eval
[ "GET /v1/dep/status/acme", "GET /v1/dep/devices/acme?limit=5", "GET /v1/dep/devices/acme/OWNED-1",
  "GET /v1/dep/devices/acme?serial=OWNED-1", "GET /v1/dep/dep_names" ]
--- error_code eval
[ 200, 200, 200, 200, 200 ]
--- json eval
[ { dep_name => "acme", last_result => "ok", stopped => JSON::PP::false, tokens => JSON::PP::true,
    cursor => JSON::PP::true, devices_known => num(31), session => JSON::PP::true,
    base_url => $::DEP->{url}, profile_uuid => "E2E-PROFILE", last_sync_at => num(),
    cursor_age_seconds => num(sub { $_[0] >= 0 && $_[0] < 120 }), token_expired => JSON::PP::false },
  { total => num(31), cursor => "5", devices => sub { @{ $_[0] } == 5 } },
  { serial_number => "OWNED-1", profile_status => "pushed", profile_uuid => "E2E-PROFILE" },
  { total => num(31), devices => [ { serial_number => "OWNED-1" } ] },
  exact({ dep_names => [ "acme" ] }) ]



=== TEST 4: the proxy: /account, define a profile, read it back with a query, Apple's 404 passed through
--- request
GET /v1/dep/proxy/acme/account
--- error_code: 200
--- json eval
{ server_name => "mock", server_uuid => "UUID-MOCK", org_name => "Mock Org" }
--- after_each eval
sub {
    my $r = api('POST', '/v1/dep/proxy/acme/profile',
                '{"profile_name":"E2E","url":"https://mdm.example.com/enroll","is_supervised":true,"devices":["S0000001"]}');
    Test::More::is($r->{status}, 200, "POST /profile through the proxy") or Test::More::diag($r->{body});
    my $uuid = $r->{json}{profile_uuid} // '';
    Test::More::like($uuid, qr/^[0-9A-F]{32}$/, "a profile UUID");
    Test::More::is($r->{json}{devices}{S0000001}, 'SUCCESS', "per-device status");
    $r = api('GET', "/v1/dep/proxy/acme/profile?profile_uuid=$uuid");
    Test::More::is($r->{status}, 200, "GET /profile?profile_uuid= through the proxy");
    Test::More::is($r->{json}{profile_name}, 'E2E', "the profile read back");
    $r = api('GET', '/v1/dep/proxy/acme/profile?profile_uuid=NOPE');
    Test::More::is($r->{status}, 404, "Apple's 404 comes back");
    Test::More::is($r->{body}, 'NOT_FOUND', "with Apple's body");
    Test::More::is(redis('LLEN', 'mdm:dep:proxy'), 0, "no job left behind");
    my @t;
    for (1 .. 20) {
        my $t0 = Time::HiRes::time();
        my $ok = api('GET', '/v1/dep/proxy/acme/account')->{status} == 200;
        push @t, Time::HiRes::time() - $t0 if $ok;
    }
    @t = sort { $a <=> $b } @t;
    Test::More::is(scalar @t, 20, "20 proxied calls in a row");
    Test::More::diag(sprintf("proxied GET /account (nginx -> Redis -> worker -> mock and back): median %.0f ms, max %.0f ms",
                             1000 * $t[10], 1000 * $t[-1]));
}



=== TEST 5: sync now: devices added in ABM show up at once, not after the 30-minute interval, and get the profile
--- request
POST /v1/dep/sync/acme
--- error_code: 202
--- json eval
exact({ dep_name => "acme", sync => "queued" })
--- redis_setup eval
sub { main::dep_ctl($::DEP, 'devices', { add => [ 'NEW-1', 'NEW-2' ] }) }
--- after_each eval
sub {
    my $t0 = Time::HiRes::time();
    wait_for(sub { api('GET', '/v1/dep/devices/acme/NEW-2')->{status} == 200 }, 20, "NEW-2 synced");
    Test::More::cmp_ok(Time::HiRes::time() - $t0, '<', 20, "within seconds");
    my $d = api('GET', '/v1/dep/devices/acme/NEW-1')->{json};
    Test::More::is($d->{op_type}, 'added', "NEW-1 arrived as added");
    wait_for(sub { devices_assigned() == 32 }, 30, "and NEW-1, NEW-2 are assigned");
}



=== TEST 6: a new token for the same server (PUT tokens) is taken without a restart: the session is dropped and the worker authenticates again
--- request eval
"PUT /v1/dep/tokens/acme\n" . JSON::PP->new->encode({ consumer_key => $::DEP->{cred}{ck}, consumer_secret => $::DEP->{cred}{cs},
  access_token => $::DEP->{cred}{at}, access_secret => $::DEP->{cred}{as}, access_token_expiry => "2098-01-01T00:00:00Z" })
--- error_code: 200
--- after_each eval
sub {
    my $before = main::dep_stats($::DEP)->{calls}{'/session'} // 0;
    my $r = api('GET', '/v1/dep/proxy/acme/account');
    Test::More::is($r->{status}, 200, "the proxy works with the new token");
    Test::More::cmp_ok(main::dep_stats($::DEP)->{calls}{'/session'} // 0, '>', $before, "after a new GET /session");
    Test::More::is(api('GET', '/v1/dep/status/acme')->{json}{access_token_expiry}, '2098-01-01T00:00:00Z', "status shows the new expiry");
}
