# Apps and Books (VPP) end to end (issue 17): nginx with the module, the
# real mdm-worker and the mock of Apple's v2 API (t/servers/vpp.pl), driven
# only as an admin and devices would: the location's config and content
# token through /v1/vpp/, 500 devices enrolled through the check-in
# (Authenticate with their serials), an install to all of them where the
# licenses run out (450 for 500: 9709 per device), associated in batches of
# Apple's maxSerialNumbers (100), the command queued only to the associated
# devices, one device fetching and acknowledging InstallApplication, the
# counts and outcomes through the API; then a token about to expire (the
# warning), a revoked token (the location stops, installs are refused, a new
# token starts it again), and a notification through mdm_vpp_notify.
# Contracts V1-V5, both halves.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;
use t::MDMServers;
use t::MDMWorker;
use t::MDMVpp;

use JSON::PP ();
use MIME::Base64 ();
use Time::HiRes ();

no_shuffle();

our $N = 500;
our $ADAM = '361309726';
our $VPP = start_vpp();
our $TOK = vpp_ctl($VPP, 'location', { name => 'Main St', org => 'Example Org' })->{token};
our $SOON = vpp_ctl($VPP, 'location', { name => 'Annex', org => 'Example Org',
                                        exp => time + 5 * 86400 + 3600 })->{token};
vpp_ctl($VPP, 'assets', { location => 'Main St', assets => [ { adamId => $ADAM, total => 450 },
                                                             { adamId => '408709785', total => 10 } ] });
vpp_ctl($VPP, 'config', { maxSerialNumbers => 100, event_delay => 0.2 });

our $W = start_worker(worker_id => 'vpp-e2e', repush_interval => 0, vpp_poll_ms => 100,
                      vpp_poll_max => 1, vpp_backoff_ms => 200, vpp_backoff_max => 2);

our %IID;

sub serial { sprintf('E2E%04d', $_[0]) }
sub udid { sprintf('E2E-UDID-%04d', $_[0]) }

# a device's check-in message or report (mdm_identity off: no signature)
sub device_req {
    my ($path, $ct, $xml) = @_;
    return http_request('PUT', $path, $xml, [ 'Content-Type' => $ct ]);
}

sub checkin_xml {
    my ($vector, %set) = @_;
    my $x = plist_set(vector($vector), %set);
    $x =~ s/^\s+|\s+\z//g;
    return $x;
}

# Authenticate + TokenUpdate of devices $from..$to, 50 at a time
sub enroll_all {
    my ($from, $to) = @_;
    for my $step ([ 'nanomdm/mdm/testdata/Authenticate.2.plist' ], [ 'nanomdm/mdm/testdata/TokenUpdate.2.plist' ]) {
        my @reqs = map { device_req('/mdm/checkin', $t::MDM::CheckinType,
                                    checkin_xml($step->[0], UDID => udid($_), SerialNumber => serial($_))) }
                   $from .. $to;
        while (my @chunk = splice @reqs, 0, 50) {
            for my $res (@{ concurrent_requests(server_port(), \@chunk) }) {
                die "check-in: $res->{status} $res->{body}" unless ($res->{status} // 0) == 200;
            }
        }
    }
}

sub report {
    my ($i, $status, $uuid) = @_;
    my $xml = qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>}
            . qq{<key>UDID</key><string>} . udid($i) . qq{</string>}
            . qq{<key>Status</key><string>$status</string>}
            . ($uuid ? qq{<key>CommandUUID</key><string>$uuid</string>} : '')
            . qq{</dict></plist>};
    return concurrent_requests(server_port(),
        [ device_req('/mdm/connect', 'application/x-apple-aspen-mdm', $xml) ])->[0];
}

sub install_state {
    my ($name, $iid) = @_;
    my $r = api('GET', "/v1/vpp/install/$name/$iid?limit=1000");
    return $r->{json}{state} // '';
}

# every device of an install, through the API's pages
sub install_devices {
    my ($name, $iid) = @_;
    my ($cursor, @all) = ('');
    for (1 .. 100) {
        my $r = api('GET', "/v1/vpp/install/$name/$iid?limit=1000&cursor=$cursor");
        die "GET install: $r->{status}" unless $r->{status} == 200;
        push @all, @{ $r->{json}{devices} };
        $cursor = $r->{json}{next_cursor};
        last if $cursor eq '';
    }
    return { map { $_->{serial} => $_ } @all };
}

sub notify {
    my ($tok, $body) = @_;
    return concurrent_requests(server_port(), [ http_request('POST', '/vpp/notify/acme', $body,
        [ Authorization => "Bearer $tok", 'Content-Type' => 'application/json' ]) ])->[0];
}

sub diag_worker { Test::More::diag(substr(worker_log($::W), -3000)) }

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"}
        for qw(serial udid enroll_all report install_state install_devices diag_worker notify);
}

api_defaults('e2e-key');
mdm_defaults(config => q{
    location /v1/ { mdm_api; mdm_api_key e2e-key; mdm_vpp_timeout 20s; }
    location /vpp/notify/ { mdm_vpp_notify; }
    location = /mdm/checkin { mdm_checkin; mdm_identity off; mdm_cert_auth off; }
    location = /mdm/connect { mdm_connect; mdm_identity off; mdm_cert_auth off; }
});

run_tests();

__DATA__

=== TEST 1: the admin points the location at the mock and gives it the token: the worker validates it, binds it, syncs the assets
--- timeout: 60
--- redis_setup eval
[ [ "FLUSHALL" ] ]
--- request eval
"PUT /v1/vpp/config/acme\n{\"base_url\": \"$::VPP->{url}\", \"notify_url\": \"http://127.0.0.1:" . Test::Nginx::Socket::server_port() . "/vpp/notify/acme\"}"
--- error_code: 200
--- after_each eval
sub {
    my $t0 = Time::HiRes::time();
    my $r = api('PUT', '/v1/vpp/tokens/acme', "$::TOK\n");
    Test::More::diag(sprintf("token PUT (nginx -> Redis -> worker -> mock and back): %.0f ms",
                             (Time::HiRes::time() - $t0) * 1000));
    Test::More::is($r->{status}, 200, "the token is taken") or Test::More::diag($r->{body});
    Test::More::is_deeply([ @{ $r->{json} }{qw(org location)} ], [ 'Example Org', 'Main St' ],
                          "org and Apple's locationName");
    Test::More::cmp_ok($r->{json}{token_expiry}, '>', time + 300 * 86400, "token_expiry (unix s)");
    eval { main::wait_for(sub { (api('GET', '/v1/vpp/tokens/acme')->{json}{assets} // 0) == 2 }, 30, "the first sync") };
    if ($@) { main::diag_worker(); die $@ }
    $r = api('GET', '/v1/vpp/tokens/acme');
    Test::More::is_deeply([ @{ $r->{json} }{qw(org location last_result has_token)} ],
                          [ 'Example Org', 'Main St', 'ok', JSON::PP::true ], "GET tokens: the location");
    Test::More::ok(!exists $r->{json}{warning}, "no warning a year before expiry");
    $r = api('GET', '/v1/vpp/assets/acme');
    my ($a) = grep { $_->{adamId} eq $::ADAM } @{ $r->{json}{assets} };
    Test::More::is_deeply([ @$a{qw(totalCount availableCount)} ], [ 450, 450 ], "GET assets: the app's licenses");
    Test::More::is(main::vpp_stats($::VPP)->{locations}{'Main St'}{mdm}{name}, 'ngx_mdm', "Apple sees ngx_mdm as the location's MDM");
    Test::More::ok(redis('GET', 'mdm:vpp:acme:notify_token'), "the worker made the notification token");
    Test::More::is_deeply([ map { $_->{status} } @{ main::vpp_stats($::VPP)->{test_notifications} } ], [ 200 ],
                          "Apple's TEST_NOTIFICATION to mdm_vpp_notify was answered 200 (else Apple refuses the config)");
    Test::More::is(scalar(grep { $_->{notification_type} eq 'TEST_NOTIFICATION' } main::vpp_events('vpp.notification')), 1,
                   "and recorded as a vpp.notification event");
}



=== TEST 2: install to 500 enrolled devices with 450 licenses: associated in batches of 100, 450 commands queued (only to associated devices), 50 refused with 9709, all visible through the API
--- timeout: 180
--- request
GET /v1/vpp/tokens/acme
--- error_code: 200
--- after_each eval
sub {
    main::enroll_all(1, $::N);
    Test::More::is(redis('HLEN', 'mdm:serials'), $::N, "500 serials indexed by the check-ins");
    main::vpp_ctl($::VPP, 'reset');
    my $r = api('POST', '/v1/vpp/install/acme', JSON::PP->new->encode({
        adam_id => $::ADAM + 0, serials => [ map { main::serial($_) } 1 .. $::N ],
        options => { management_flags => 1 } }));
    Test::More::is($r->{status}, 202, "the install is accepted") or Test::More::diag($r->{body});
    Test::More::is_deeply([ @{ $r->{json} }{qw(total enrolled not_enrolled)} ], [ 500, 500, 0 ], "500 devices, all enrolled");
    my $iid = $::IID{install} = $r->{json}{install_id};
    $::IID{uuid} = $r->{json}{command_uuid};
    my $t0 = Time::HiRes::time();
    eval { main::wait_for(sub { main::install_state('acme', $iid) =~ /^(done|failed)$/ }, 90, "the install ends") };
    if ($@) { main::diag_worker(); die $@ }
    Test::More::diag(sprintf("install to 500 devices, 202 to done (5 batches, mock event delay 0.2 s): %.1f s",
                             Time::HiRes::time() - $t0));
    $r = api('GET', "/v1/vpp/install/acme/$iid?limit=10");
    Test::More::is_deeply([ @{ $r->{json} }{qw(state total associated queued failed action adam_id)} ],
                          [ 'done', 500, 450, 450, 50, 'install', $::ADAM ], "the counts through the API");
    my $st = main::vpp_stats($::VPP);
    Test::More::is_deeply($st->{batches}, [ 100, 100, 100, 100, 100 ], "associated in 5 batches of maxSerialNumbers (100)");
    Test::More::is_deeply($st->{violations}, [], "no call the mock refused");
    my $d = main::install_devices('acme', $iid);
    Test::More::is(scalar keys %$d, 500, "every device through the pages");
    my (@queued, @failed, $wrong);
    for my $i (1 .. $::N) {
        my $x = $d->{ main::serial($i) };
        my $q = redis('LLEN', "mdm:q:{" . main::udid($i) . "}");
        if ($x->{state} eq 'queued') { push @queued, $i; $wrong++ if $q != 1 }
        elsif ($x->{state} eq 'failed') { push @failed, $i; $wrong++ if $q != 0 || ($x->{error_number} // 0) != 9709 }
        else { $wrong++ }
    }
    Test::More::is(scalar @queued, 450, "450 devices queued");
    Test::More::is(scalar @failed, 50, "50 failed");
    Test::More::ok(!$wrong, "the command is in the queue of exactly the associated devices; 9709 for the others");
    Test::More::is(redis('SCARD', "mdm:cmd:$::IID{uuid}:targets"), 450, "the command's targets: 450");
    $r = api('GET', "/v1/vpp/assignments/acme?adamId=$::ADAM&limit=1000");
    Test::More::is($r->{json}{count}, 450, "GET assignments by adamId: 450 serials");
    $r = api('GET', "/v1/vpp/assignments/acme?serial=" . main::serial($queued[0]));
    Test::More::is_deeply($r->{json}{adam_ids}, [ $::ADAM ], "GET assignments by serial");
    main::wait_for(sub { (main::vpp_events('vpp.install'))[0] }, 10, "a vpp.install event");
    my ($ev) = main::vpp_events('vpp.install');
    Test::More::is_deeply([ @$ev{qw(vpp_name install_id state queued failed)} ], [ 'acme', $iid, 'done', 450, 50 ],
                          "the vpp.install event");
    $::IID{device} = $queued[0];
}



=== TEST 3: a device fetches InstallApplication (iTunesStoreID, PurchaseMethod 1) and acknowledges it: the install shows it per device
--- request
GET /v1/vpp/tokens/acme
--- error_code: 200
--- after_each eval
sub {
    my $i = $::IID{device};
    my $res = main::report($i, 'Idle');
    Test::More::is($res->{status}, 200, "Idle: 200");
    Test::More::like($res->{body}, qr{<string>InstallApplication</string>}, "the device gets InstallApplication");
    Test::More::like($res->{body}, qr{<key>iTunesStoreID</key>\s*<integer>$::ADAM</integer>}, "iTunesStoreID");
    Test::More::like($res->{body}, qr{<key>PurchaseMethod</key>\s*<integer>1</integer>}, "Options.PurchaseMethod 1");
    Test::More::like($res->{body}, qr{<key>ManagementFlags</key>\s*<integer>1</integer>}, "ManagementFlags");
    $res = main::report($i, 'Acknowledged', $::IID{uuid});
    Test::More::is($res->{status}, 200, "Acknowledged: 200");
    my $r = api('GET', "/v1/vpp/install/acme/$::IID{install}?limit=1000");
    my ($x) = grep { $_->{serial} eq main::serial($i) } @{ $r->{json}{devices} };
    Test::More::is_deeply($x, { serial => main::serial($i), enrollment_id => main::udid($i), state => 'queued',
                                command_status => 'Acknowledged' }, "the device acknowledged the install");
}



=== TEST 4: a token that expires in 5 days: the API warns (expires_in_days, warning) and the worker sends a vpp.token event
--- timeout: 60
--- request eval
"PUT /v1/vpp/config/annex\n{\"base_url\": \"$::VPP->{url}\"}"
--- error_code: 200
--- after_each eval
sub {
    my $r = api('PUT', '/v1/vpp/tokens/annex', $::SOON);
    Test::More::is($r->{status}, 200, "the token is taken") or Test::More::diag($r->{body});
    $r = api('GET', '/v1/vpp/tokens/annex');
    Test::More::is($r->{json}{expires_in_days}, 5, "expires_in_days 5");
    Test::More::like($r->{json}{warning} // '', qr/expires in 5 days/, "the warning");
    eval { main::wait_for(sub { grep { ($_->{vpp_name} // '') eq 'annex' } main::vpp_events('vpp.token') }, 30,
                          "a vpp.token event") };
    if ($@) { main::diag_worker(); die $@ }
}



=== TEST 5: a revoked token: the location stops (stop_reason 9625), installs are refused; a new token starts it again
--- timeout: 60
--- request
POST /v1/vpp/sync/acme
--- error_code: 200
--- after_each eval
sub {
    main::vpp_ctl($::VPP, 'token', { token => $::TOK, state => 'revoked' });
    my $r = api('POST', '/v1/vpp/sync/acme');
    Test::More::cmp_ok($r->{status}, '>=', 400, "a sync with a revoked token fails ($r->{status})");
    eval { main::wait_for(sub { api('GET', '/v1/vpp/tokens/acme')->{json}{stopped} }, 30, "the location stops") };
    if ($@) { main::diag_worker(); die $@ }
    $r = api('GET', '/v1/vpp/tokens/acme');
    Test::More::like($r->{json}{stop_reason} // '', qr/9625|revoked/i, "stop_reason: revoked ($r->{json}{stop_reason})");
    $r = api('POST', '/v1/vpp/install/acme', '{"adam_id": "408709785", "serials": ["E2E0001"]}');
    Test::More::is($r->{status}, 409, "an install on a stopped location: 409");
    Test::More::like($r->{json}{error}, qr/stopped/, "it says why");
    main::vpp_ctl($::VPP, 'token', { token => $::TOK, state => 'ok' });
    $r = api('PUT', '/v1/vpp/tokens/acme', $::TOK);
    Test::More::is($r->{status}, 200, "a token PUT starts it again") or Test::More::diag($r->{body});
    $r = api('GET', '/v1/vpp/tokens/acme');
    Test::More::ok(!$r->{json}{stopped}, "not stopped any more");
}



=== TEST 6: a notification from Apple with the worker's bearer token: one event, a sync now; a retry of it adds nothing
--- timeout: 60
--- request
GET /v1/vpp/tokens/acme
--- error_code: 200
--- after_each eval
sub {
    my $tok = redis('GET', 'mdm:vpp:acme:notify_token');
    my $before = api('GET', '/v1/vpp/tokens/acme')->{json}{last_sync_at} // 0;
    my $n = '{"notificationId":"E2E-N-1","notificationType":"ASSET_COUNT","notification":{"adamId":"361309726"},"uId":"1"}';
    my $res = main::notify($tok, $n);
    Test::More::is($res->{status}, 200, "the notification is taken");
    eval { main::wait_for(sub { (api('GET', '/v1/vpp/tokens/acme')->{json}{last_sync_at} // 0) > $before }, 30,
                          "the worker synced the location") };
    if ($@) { main::diag_worker(); die $@ }
    $res = main::notify($tok, $n);
    Test::More::like($res->{body}, qr/"duplicate":true/, "Apple's retry: a duplicate");
    Test::More::is(scalar(grep { $_->{notification_id} eq 'E2E-N-1' } main::vpp_events('vpp.notification')), 1,
                   "one vpp.notification event");
}
