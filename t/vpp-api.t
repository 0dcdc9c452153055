# /v1/vpp/ (issue 17, contracts V1-V5, the module's half): content tokens
# checked locally then handed to the worker as V2 jobs (RPUSH mdm:vpp:jobs)
# whose replies (SET mdm:vpp:reply:ID) are polled until mdm_vpp_timeout
# (504); locations, config, assets, assignments as the worker leaves them in
# Redis; installs and removals stored as V3 says (command unqueued, install
# hashes, job); the serial index mdm:serials; the notifications endpoint.
#
# The worker's half of V2 is played here by a forked loop that takes jobs
# with BLPOP and SETs replies (the contract, not a mock of our code);
# t/vpp-e2e.t runs the real mdm-worker against the mock of Apple.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;

use JSON::PP ();
use MIME::Base64 ();
use POSIX ();
use Time::HiRes ();

no_shuffle();

our $KEY = 'vpp-key';
our $JOBS = pki_dir() . '/vpp-jobs';
our @KIDS;
# fake_worker(), jobs(), reap() of t/MDMApi.pm take jobs from here
our $JOBQ = 'mdm:vpp:jobs';
our $REPLY = 'mdm:vpp:reply:';

# a content token as Apple's portal gives it: base64 of the JSON
sub stoken {
    my (%o) = @_;
    my $exp = $o{exp} // '2099-11-08T22:33:22+0000';
    return MIME::Base64::encode_base64(JSON::PP->new->canonical->encode({
        token => $o{token} // 'VPP-SECRET-1', expDate => $exp, orgName => 'Example Org' }), '');
}

# in a block of several requests: reap once the worker took its n jobs
sub reap_at { my ($n) = @_; reap() if @{ jobs() } >= $n }

# a location the worker validated: token, status, assets, assignments
sub seed {
    my (%o) = @_;
    redis('FLUSHALL');
    redis('SADD', 'mdm:vpp:names', 'acme');
    redis('SET', 'mdm:vpp:acme:token', stoken());
    redis('HSET', 'mdm:vpp:acme:status', 'org', 'Example Org', 'location', 'HQ',
          'token_expiry', $o{expiry} // (time + 200 * 86400), 'last_result', 'ok',
          'stopped', $o{stopped} ? '1' : '0', 'stop_reason', $o{stopped} // '',
          'assets', 3, 'version_id', 'v7', 'last_sync_at', '1700000000000');
    for my $a (361309726, 408709785, 1091189122) {
        redis('HSET', 'mdm:vpp:acme:assets', $a, qq({"adamId":"$a","pricingParam":"STDQ",)
              . qq("assignedCount":2,"availableCount":8,"totalCount":10,"deviceAssignable":true}));
    }
    redis('SADD', 'mdm:vpp:acme:asg:361309726', 'SER-1', 'SER-2');
    redis('SADD', 'mdm:vpp:acme:sasg:SER-1', '361309726', '408709785');
    redis('SADD', 'mdm:vpp:acme:sasg:SER-2', '361309726');
    # the worker's indexes of its assignment sets
    redis('SADD', 'mdm:vpp:acme:adams', '361309726');
    redis('SADD', 'mdm:vpp:acme:serials', 'SER-1', 'SER-2');
}

# a device that sent Authenticate with this serial (mdm_identity off)
sub enroll {
    my ($udid, $serial) = @_;
    my $req = checkin_request("nanomdm/mdm/testdata/Authenticate.2.plist",
                              UDID => $udid, SerialNumber => $serial);
    my ($path, $body) = $req =~ /^PUT (\S+)\n(.*)$/s;
    my $res = concurrent_requests(server_port(),
        [ http_request('PUT', '/mdm/checkin', $body,
                       [ 'Content-Type' => $t::MDM::CheckinType ]) ])->[0];
    die "enroll $udid: $res->{status}" unless ($res->{status} // 0) == 200;
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(stoken fake_worker jobs reap reap_at seed enroll);
}

api_defaults($KEY);
mdm_defaults(config => qq{
    location /v1/ { mdm_api; mdm_api_key $KEY; mdm_vpp_timeout 1s; }
    location /vpp/notify/ { mdm_vpp_notify; }
    location = /mdm/checkin { mdm_checkin; mdm_identity off; mdm_cert_auth off; }
});

run_tests();

__DATA__

=== TEST 1: PUT a token: the job carries id, name, op, the token as sent, force, a deadline; the worker's reply is the answer
--- redis_setup eval
sub {
    redis('FLUSHALL');
    $::T0 = int(Time::HiRes::time() * 1000);
    fake_worker(reply => sub { { status => 200, body => { org => 'Example Org', location => 'HQ',
                                                         token_expiry => 4098000000 } } });
}
--- request eval
"PUT /v1/vpp/tokens/acme\n" . stoken() . "\n"
--- error_code: 200
--- json eval
exact({ org => 'Example Org', location => 'HQ', token_expiry => num(4098000000) })
--- after_each eval
sub {
    reap();
    my $j = jobs();
    Test::More::is(scalar @$j, 1, "one job");
    my $job = $j->[0];
    Test::More::like($job->{id}, qr/^[0-9a-f]{32}$/, "id: 32 hex");
    Test::More::is_deeply([ @$job{qw(name op token)} ], [ 'acme', 'token', stoken() ],
                          "name, op, the token without the newline");
    Test::More::ok(JSON::PP::is_bool($job->{force}) && !$job->{force}, "force: false");
    Test::More::cmp_ok($job->{deadline}, '>=', $::T0 + 1000, "deadline: now + mdm_vpp_timeout");
    Test::More::cmp_ok($job->{deadline}, '<=', $::T0 + 3000, "deadline: not later");
    Test::More::is(redis('SISMEMBER', 'mdm:vpp:names', 'acme'), 1, "the name is known");
    Test::More::is(redis('EXISTS', 'mdm:vpp:acme:token'), 0, "the module does not store the token (the worker does)");
    Test::More::is(redis('EXISTS', "mdm:vpp:reply:$job->{id}"), 0, "the reply was taken");
}
--- no_error_log
[error]



=== TEST 2: a location bound to another MDM: the worker's 409 passes through; ?force=1 sends force true
--- redis_setup eval
sub {
    redis('FLUSHALL');
    fake_worker(n => 2, reply => sub {
        $_[0]{force} ? { status => 200, body => { org => 'Example Org' } }
                     : { status => 409, body => { error => 'bound to another MDM', mdm => { id => 'X', name => 'Other' } } } });
}
--- request eval
[ "PUT /v1/vpp/tokens/acme\n" . stoken(), "PUT /v1/vpp/tokens/acme?force=1\n" . stoken() ]
--- error_code eval
[ 409, 200 ]
--- json eval
[ { error => 'bound to another MDM', mdm => { name => 'Other' } }, { org => 'Example Org' } ]
--- after_each eval
sub { my $j = jobs(); if (@$j == 2) { reap(); Test::More::ok($j->[1]{force} && !$j->[0]{force}, "force: true the second time") } }



=== TEST 3: no worker: 504 after mdm_vpp_timeout (1 s) with one error line; the job waits for a worker to drop it
--- redis_setup eval
[ [ "FLUSHALL" ] ]
--- request eval
"PUT /v1/vpp/tokens/acme\n" . stoken()
--- error_code: 504
--- json eval
{ error => qr/mdm_vpp_timeout/ }
--- grep_error_log eval
qr/\[error\] [^\n]*VPP job[^\n]*/
--- grep_error_log_out eval
qr/\A\[error\] [^\n]*VPP job "token" of VPP location "acme" got no answer in 1000 ms \(mdm_vpp_timeout\)[^\n]*\n\z/
--- redis_check eval
[ [ "LLEN mdm:vpp:jobs", 1 ] ]



=== TEST 4: bad tokens and names: 400 (or 413) before any job, one info line each
--- redis_setup eval
[ [ "FLUSHALL" ] ]
--- request eval
[ "PUT /v1/vpp/tokens/acme\n%%%not base64%%%",
  "PUT /v1/vpp/tokens/acme\n" . MIME::Base64::encode_base64('{"token":"x"}', ''),
  "PUT /v1/vpp/tokens/acme\n" . MIME::Base64::encode_base64('[1,2]', ''),
  "PUT /v1/vpp/tokens/acme\n" . stoken(exp => '2020-01-01T00:00:00+0000'),
  "PUT /v1/vpp/tokens/acme\n" . stoken(exp => 'soon'),
  "PUT /v1/vpp/tokens/acme?force=maybe\n" . stoken(),
  "PUT /v1/vpp/tokens/a%20b\n" . stoken(),
  "PUT /v1/vpp/tokens/" . ('n' x 65) . "\n" . stoken(),
  "PUT /v1/vpp/tokens/acme\n",
  "PUT /v1/vpp/tokens/acme\n" . ('A' x 20000),
  "POST /v1/vpp/tokens/acme\n" . stoken(),
  "GET /v1/vpp/nothing/acme",
  "GET /v1/vpp/config/acme/more" ]
--- error_code eval
[ 400, 400, 400, 400, 400, 400, 400, 400, 400, 413, 405, 404, 404 ]
--- json eval
[ { error => qr/not base64/ }, { error => qr/token.*expDate.*orgName/ }, { error => qr/expDate/ },
  { error => qr/expired/ }, { error => qr/not a date/ }, { error => qr/force/ },
  { error => qr/name/ }, { error => qr/name/ }, { error => qr/empty/ }, { error => qr/too large/ },
  { error => qr/GET, PUT or DELETE/ }, { error => qr/unknown VPP endpoint/ }, { error => qr/nothing follows/ } ]
--- redis_check eval
[ [ "LLEN mdm:vpp:jobs", 0 ], [ "EXISTS mdm:vpp:names", 0 ] ]
--- no_error_log
[error]



=== TEST 5: GET tokens: org, location, expiry, expires_in_days; a warning under 15 days; stopped with its reason
--- redis_setup eval
sub {
    seed(expiry => time + 10 * 86400 + 3600);
    redis('SADD', 'mdm:vpp:names', 'old', 'new');
    redis('HSET', 'mdm:vpp:old:status', 'token_expiry', time - 86400 + 600, 'stopped', 1, 'stop_reason', '9625 token revoked');
    redis('HSET', 'mdm:vpp:new:config', 'base_url', 'http://127.0.0.1:1/mdm/v2');
}
--- request eval
[ "GET /v1/vpp/tokens/acme", "GET /v1/vpp/tokens", "GET /v1/vpp/tokens/nope" ]
--- error_code eval
[ 200, 200, 404 ]
--- json eval
[ { name => 'acme', org => 'Example Org', location => 'HQ', has_token => JSON::PP::true,
    expires_in_days => num(10), token_expiry => num(), warning => qr/expires in 10 days/,
    stopped => JSON::PP::false, stop_reason => absent(), assets => num(3),
    base_url => 'https://vpp.itunes.apple.com/mdm/v2' },
  { locations => [ { name => 'acme' },
                   { name => 'new', has_token => JSON::PP::false, base_url => 'http://127.0.0.1:1/mdm/v2',
                     warning => absent() },
                   { name => 'old', stopped => JSON::PP::true, stop_reason => '9625 token revoked',
                     warning => qr/expired/, expires_in_days => num(-1) } ] },
  { error => qr/unknown VPP location/ } ]



=== TEST 6: config: PUT base_url and notify_url, GET them back, null resets to Apple's; bad URLs and keys 400
--- redis_setup eval
[ [ "FLUSHALL" ] ]
--- request eval
[ "PUT /v1/vpp/config/acme\n{\"base_url\": \"http://127.0.0.1:9/mdm/v2\", \"notify_url\": \"https://mdm.example.com/vpp/notify/acme\"}",
  "GET /v1/vpp/config/acme",
  "PUT /v1/vpp/config/acme\n{\"base_url\": null}",
  "PUT /v1/vpp/config/acme\n{\"base_url\": \"ftp://x\"}",
  "PUT /v1/vpp/config/acme\n{\"base_url\": \"http://a b\"}",
  "PUT /v1/vpp/config/acme\n{\"other\": 1}",
  "PUT /v1/vpp/config/acme\n[1]",
  "GET /v1/vpp/config/nope" ]
--- error_code eval
[ 200, 200, 200, 400, 400, 400, 400, 404 ]
--- json eval
[ { base_url => 'http://127.0.0.1:9/mdm/v2', notify_url => 'https://mdm.example.com/vpp/notify/acme', default => JSON::PP::false },
  exact({ name => 'acme', base_url => 'http://127.0.0.1:9/mdm/v2', notify_url => 'https://mdm.example.com/vpp/notify/acme', default => JSON::PP::false }),
  exact({ name => 'acme', base_url => 'https://vpp.itunes.apple.com/mdm/v2', default => JSON::PP::true }),
  { error => qr/URL/ }, { error => qr/URL/ }, { error => qr/base_url and notify_url only/ },
  { error => qr/JSON object/ }, { error => qr/unknown/ } ]
--- redis_check eval
[ [ "HGET mdm:vpp:acme:config base_url", undef ], [ "HGET mdm:vpp:acme:config notify_url", undef ],
  [ "SISMEMBER mdm:vpp:names acme", 1 ] ]



=== TEST 7: assets paged (Apple's items verbatim), assignments by serial and by adamId; bad filters 400
--- redis_setup eval
sub { seed() }
--- request eval
[ "GET /v1/vpp/assets/acme?limit=1000", "GET /v1/vpp/assignments/acme?serial=SER-1",
  "GET /v1/vpp/assignments/acme?adamId=361309726", "GET /v1/vpp/assignments/acme",
  "GET /v1/vpp/assignments/acme?serial=SER-1&adamId=1", "GET /v1/vpp/assignments/acme?adamId=12x",
  "GET /v1/vpp/assets/acme?limit=0", "GET /v1/vpp/assets/nope" ]
--- error_code eval
[ 200, 200, 200, 400, 400, 400, 400, 404 ]
--- json eval
[ { count => num(3), next_cursor => '', assets => sub { my @a = sort map { $_->{adamId} } @{ $_[0] };
      "@a" eq "1091189122 361309726 408709785" && $_[0][0]{availableCount} == 8 } },
  exact({ name => 'acme', serial => 'SER-1', adam_ids => [ '361309726', '408709785' ] }),
  { adam_id => '361309726', count => num(2), serials => sub { CORE::join(' ', sort @{ $_[0] }) eq 'SER-1 SER-2' } },
  { error => qr/one of them/ }, { error => qr/one of them/ }, { error => qr/one of them/ },
  { error => qr/limit/ }, { error => qr/unknown/ } ]



=== TEST 8: sync: 409 without a token; with one, a "sync" job and the worker's reply
--- redis_setup eval
sub {
    seed();
    redis('SADD', 'mdm:vpp:names', 'bare');
    fake_worker(reply => sub { { status => 200, body => { assets => 3, version_id => 'v8' } } });
}
--- request eval
[ "POST /v1/vpp/sync/bare", "POST /v1/vpp/sync/acme", "GET /v1/vpp/sync/acme" ]
--- error_code eval
[ 409, 200, 405 ]
--- json eval
[ { error => qr/no token/ }, exact({ assets => num(3), version_id => 'v8' }), { error => qr/POST/ } ]
--- after_each eval
sub { my $j = jobs(); if (@$j) { reap(); Test::More::is_deeply([ map { $_->{op} } @$j ], [ 'sync' ], "one sync job") } }



=== TEST 9: the worker's reply is invalid: 502 and one error line
--- redis_setup eval
sub { seed(); fake_worker(reply => sub { '{"status": "ok"}' }) }
--- request
POST /v1/vpp/sync/acme
--- error_code: 502
--- json eval
{ error => qr/invalid/ }
--- grep_error_log eval
qr/\[error\][^\n]*not \{"status"/
--- grep_error_log_out eval
qr/\A[^\n]+\n\z/
--- after_each eval
sub { reap() }



=== TEST 10: the serial index: Authenticate writes mdm:serials, DELETE /v1/enrollments/ID removes it
--- redis_setup eval
[ [ "FLUSHALL" ] ]
--- request
GET /v1/vpp/tokens
--- error_code: 200
--- after_each eval
sub {
    enroll('UDID-IDX-1', 'SER-IDX-1');
    Test::More::is(redis('HGET', 'mdm:serials', 'SER-IDX-1'), 'UDID-IDX-1', "Authenticate indexes the serial");
    my $r = api('DELETE', '/v1/enrollments/UDID-IDX-1');
    Test::More::is($r->{status}, 200, "the enrollment is deleted");
    Test::More::is(redis('HEXISTS', 'mdm:serials', 'SER-IDX-1'), 0, "and its serial with it");
    enroll('UDID-IDX-2', 'SER-IDX-2');
    redis('HSET', 'mdm:serials', 'SER-IDX-2', 'UDID-OTHER');
    api('DELETE', '/v1/enrollments/UDID-IDX-2');
    Test::More::is(redis('HGET', 'mdm:serials', 'SER-IDX-2'), 'UDID-OTHER',
                   "an entry that names another device stays");
}



=== TEST 11: install by serials: the InstallApplication plist stored unqueued, the install hashes (V3), the job; 202
--- redis_setup eval
sub { seed() }
--- request
GET /v1/vpp/tokens
--- error_code: 200
--- after_each eval
sub {
    enroll("UDID-I-$_", "SER-I-$_") for 1 .. 3;
    my $r = api('POST', '/v1/vpp/install/acme',
                '{"adam_id": 361309726, "serials": ["SER-I-1", "SER-I-2", "SER-I-3", "SER-NONE", "SER-I-1"],'
                . ' "options": {"management_flags": 1, "pricing_param": "PLUS"}}');
    Test::More::is($r->{status}, 202, "the install is accepted") or Test::More::diag($r->{body});
    my $j = $r->{json};
    Test::More::like($j->{install_id}, qr/^[0-9a-f]{32}$/, "install_id");
    Test::More::is_deeply([ @$j{qw(total enrolled not_enrolled)} ], [ 4, 3, 1 ], "4 devices, 3 enrolled");
    my $uuid = $j->{command_uuid};
    my $plist = redis('HGET', "mdm:cmd:$uuid", 'plist');
    Test::More::like($plist, qr{<key>iTunesStoreID</key>\s*<integer>361309726</integer>}, "iTunesStoreID");
    Test::More::like($plist, qr{<key>PurchaseMethod</key>\s*<integer>1</integer>}, "Options.PurchaseMethod 1");
    Test::More::like($plist, qr{<key>ManagementFlags</key>\s*<integer>1</integer>}, "ManagementFlags");
    Test::More::like($plist, qr{<key>CommandUUID</key>\s*<string>\Q$uuid\E</string>}, "its CommandUUID");
    Test::More::is(redis('HGET', "mdm:cmd:$uuid", 'request_type'), 'InstallApplication', "request_type");
    Test::More::cmp_ok(redis('TTL', "mdm:cmd:$uuid"), '>=', 30 * 86400 - 10, "kept at least 30 days");
    Test::More::is(redis('LLEN', 'mdm:q:{UDID-I-1}'), 0, "not queued: the worker queues it once associated");
    Test::More::is(redis('EXISTS', "mdm:cmd:$uuid:targets"), 0, "no targets yet");
    my $iid = $j->{install_id};
    my %h = @{ redis('HGETALL', "mdm:vpp:install:$iid") };
    Test::More::is_deeply({ map { $_ => $h{$_} } qw(name action adam_id pricing_param command_uuid state total associated queued failed) },
        { name => 'acme', action => 'install', adam_id => '361309726', pricing_param => 'PLUS', command_uuid => $uuid,
          state => 'pending', total => 4, associated => 0, queued => 0, failed => 0 }, "the install hash");
    Test::More::cmp_ok(redis('TTL', "mdm:vpp:install:$iid"), '>', 29 * 86400, "it expires in 30 days");
    Test::More::cmp_ok(redis('TTL', "mdm:vpp:install:$iid:dev"), '>', 29 * 86400, "and its devices");
    my $d = JSON::PP->new->decode(redis('HGET', "mdm:vpp:install:$iid:dev", 'SER-I-2'));
    Test::More::is_deeply($d, { enrollment_id => 'UDID-I-2', state => 'pending' }, "an enrolled device");
    $d = JSON::PP->new->decode(redis('HGET', "mdm:vpp:install:$iid:dev", 'SER-NONE'));
    Test::More::is_deeply($d, { enrollment_id => '', state => 'no_enrollment' }, "a serial not enrolled");
    my $job = JSON::PP->new->decode(redis('LINDEX', 'mdm:vpp:jobs', 0));
    Test::More::is_deeply({ %$job, id => 'X' }, { id => 'X', name => 'acme', op => 'install', install => $iid, deadline => 0 },
                          "the job: {id, name, op, install, deadline 0}");

    # GET: the summary and the devices, as the worker advances them
    redis('HSET', "mdm:vpp:install:$iid:dev", 'SER-I-1', '{"enrollment_id":"UDID-I-1","state":"queued"}',
          'SER-I-3', '{"enrollment_id":"UDID-I-3","state":"failed","error":"not enough licenses","error_number":9709}');
    redis('HSET', "mdm:vpp:install:$iid", 'queued', 1, 'failed', 1, 'associated', 1, 'state', 'done');
    redis('HSET', "mdm:r:{UDID-I-1}:$uuid", 'status', 'Acknowledged');
    $r = api('GET', "/v1/vpp/install/acme/$iid?limit=1000");
    Test::More::is($r->{status}, 200, "GET the install");
    my @devs = sort { $a->{serial} cmp $b->{serial} } @{ $r->{json}{devices} };
    Test::More::is_deeply([ @{ $r->{json} }{qw(state total queued failed associated action)} ],
                          [ 'done', 4, 1, 1, 1, 'install' ], "the counts, as numbers");
    Test::More::is_deeply($devs[0], { serial => 'SER-I-1', enrollment_id => 'UDID-I-1', state => 'queued',
                                      command_status => 'Acknowledged' }, "a queued device with its command's result");
    Test::More::is_deeply($devs[2], { serial => 'SER-I-3', enrollment_id => 'UDID-I-3', state => 'failed',
                                      error => 'not enough licenses', error_number => 9709 }, "9709 per device");
    $r = api('GET', "/v1/vpp/install/acme/$iid?state=failed");
    Test::More::is(scalar @{ $r->{json}{devices} }, 1, "?state=failed");
    $r = api('GET', "/v1/vpp/install/other/$iid");
    Test::More::is($r->{status}, 404, "another location's install: 404");

    # by enrollment ids; unknown ones refuse the whole install
    $r = api('POST', '/v1/vpp/install/acme', '{"adam_id": "408709785", "enrollment_ids": ["UDID-I-1", "UDID-I-2"]}');
    Test::More::is_deeply([ $r->{status}, $r->{json}{total} ], [ 202, 2 ], "by enrollment ids");
    $r = api('POST', '/v1/vpp/install/acme', '{"adam_id": "408709785", "enrollment_ids": ["UDID-I-1", "NOPE"]}');
    Test::More::is_deeply([ $r->{status}, $r->{json}{enrollment_ids} ], [ 400, [ 'NOPE' ] ], "an unknown enrollment: 400");
    Test::More::is(redis('LLEN', 'mdm:vpp:jobs'), 2, "and no job");

    # remove: RemoveApplication with the bundle id
    $r = api('POST', '/v1/vpp/remove/acme', '{"adam_id": "361309726", "identifier": "com.example.app", "serials": ["SER-I-1"]}');
    Test::More::is($r->{status}, 202, "remove: 202");
    $plist = redis('HGET', "mdm:cmd:$r->{json}{command_uuid}", 'plist');
    Test::More::like($plist, qr{<key>RequestType</key>\s*<string>RemoveApplication</string>}, "RemoveApplication");
    Test::More::like($plist, qr{<key>Identifier</key>\s*<string>com.example.app</string>}, "its Identifier");
    Test::More::is(redis('HGET', "mdm:vpp:install:$r->{json}{install_id}", 'action'), 'remove', "action remove");
    $job = JSON::PP->new->decode(redis('LINDEX', 'mdm:vpp:jobs', -1));
    Test::More::is($job->{op}, 'remove', "a remove job");
}
--- no_error_log
[error]



=== TEST 12: bad installs: 400 + one line each, nothing written; a stopped location 409
--- redis_setup eval
sub { seed(); redis('SADD', 'mdm:vpp:names', 'stopped'); redis('SET', 'mdm:vpp:stopped:token', 'x');
      redis('HSET', 'mdm:vpp:stopped:status', 'stopped', 1, 'stop_reason', '9621 token expired') }
--- request eval
[ "POST /v1/vpp/install/acme\n{\"serials\": [\"A\"]}",
  "POST /v1/vpp/install/acme\n{\"adam_id\": \"12a\", \"serials\": [\"A\"]}",
  "POST /v1/vpp/install/acme\n{\"adam_id\": 1, \"serials\": [\"A\"], \"enrollment_ids\": [\"B\"]}",
  "POST /v1/vpp/install/acme\n{\"adam_id\": 1, \"serials\": []}",
  "POST /v1/vpp/install/acme\n{\"adam_id\": 1, \"serials\": [\"a b\"]}",
  "POST /v1/vpp/install/acme\n{\"adam_id\": 1, \"serials\": [\"A\"], \"options\": {\"nonsense\": 1}}",
  "POST /v1/vpp/install/acme\n{\"adam_id\": 1, \"serials\": [\"A\"], \"options\": {\"management_flags\": \"x\"}}",
  "POST /v1/vpp/install/acme\n{\"adam_id\": 1, \"serials\": [\"A\"], \"options\": {\"pricing_param\": \"FREE\"}}",
  "POST /v1/vpp/install/acme\n{\"adam_id\": 1, \"serials\": [\"A\"], \"options\": {\"purchase_method\": 0}}",
  "POST /v1/vpp/install/acme\n{\"adam_id\": 1, \"serials\": [\"A\"], \"extra\": 1}",
  "POST /v1/vpp/remove/acme\n{\"adam_id\": 1, \"serials\": [\"A\"]}",
  "POST /v1/vpp/install/acme\n{\"adam_id\": 1, \"enrollment_ids\": [\"A:user\"]}",
  "POST /v1/vpp/install/acme\nnot json",
  "POST /v1/vpp/install/stopped\n{\"adam_id\": 1, \"serials\": [\"A\"]}",
  "POST /v1/vpp/install/nope\n{\"adam_id\": 1, \"serials\": [\"A\"]}",
  "GET /v1/vpp/install/acme/0123456789abcdef0123456789abcdef" ]
--- error_code eval
[ (400) x 13, 409, 404, 404 ]
--- json eval
[ { error => qr/adam_id/ }, { error => qr/adam_id/ }, { error => qr/one of them/ }, { error => qr/1 to 10000/ },
  { error => qr/serial number/ }, { error => qr/nonsense/ }, { error => qr/management_flags/ },
  { error => qr/STDQ or PLUS/ }, { error => qr/may not set/ }, { error => qr/install takes/ },
  { error => qr/identifier/ }, { error => qr/user channel/ }, { error => qr/JSON object/ },
  { error => qr/stopped \(9621 token expired\)/ }, { error => qr/unknown VPP location/ }, { error => qr/no install/ } ]
--- redis_check eval
[ [ "LLEN mdm:vpp:jobs", 0 ], [ "KEYS mdm:cmd:*", [] ], [ "KEYS mdm:vpp:install:*", [] ] ]
--- no_error_log
[error]



=== TEST 13: DELETE a location: its token, config, status, assets and assignment sets go, the name too
--- redis_setup eval
sub { seed(); redis('HSET', 'mdm:vpp:acme:config', 'base_url', 'http://x/'); redis('SET', 'mdm:vpp:acme:notify_token', 'n');
      # the worker's indexes, and a full sync in progress
      redis('SADD', 'mdm:vpp:acme:adams', '361309726', '555'); redis('SADD', 'mdm:vpp:acme:serials', 'SER-1', 'SER-2', 'SER-9');
      redis('SADD', 'mdm:vpp:acme:asg:555', 'SER-9'); redis('SADD', 'mdm:vpp:acme:sasg:SER-9', '555');
      redis('SADD', 'mdm:vpp:acme:new:adams', '777'); redis('SADD', 'mdm:vpp:acme:new:asg:777', 'SER-7');
      redis('SADD', 'mdm:vpp:acme:new:sasg:SER-7', '777'); redis('SADD', 'mdm:vpp:acme:new:serials', 'SER-7');
      redis('HSET', 'mdm:vpp:acme:assets:new', '777', '{}');
      # a swap under way: live sets indexed in idx:
      redis('SADD', 'mdm:vpp:acme:idx:adams', '888'); redis('SADD', 'mdm:vpp:acme:asg:888', 'SER-8');
      redis('SADD', 'mdm:vpp:acme:idx:serials', 'SER-8'); redis('SADD', 'mdm:vpp:acme:sasg:SER-8', '888') }
--- request eval
[ "DELETE /v1/vpp/tokens/acme", "DELETE /v1/vpp/tokens/acme" ]
--- error_code eval
[ 200, 404 ]
--- json eval
[ { deleted => JSON::PP::true, assets => num(6), serials => num(5) }, { error => qr/unknown/ } ]
--- redis_check eval
[ [ "KEYS mdm:vpp:acme*", [] ], [ "SISMEMBER mdm:vpp:names acme", 0 ] ]



=== TEST 14: notifications: wrong or missing bearer 401; one event per notificationId; ASSET_COUNT asks for a sync now
--- redis_setup eval
sub { seed(); redis('SET', 'mdm:vpp:acme:notify_token', 'NTOK-1') }
--- request eval
my $n = '{"notificationId":"N-1","notificationType":"ASSET_COUNT","notification":{"adamId":"361309726","countDelta":5},"uId":"u"}';
[ "POST /vpp/notify/acme\n$n", "POST /vpp/notify/acme\n$n", "POST /vpp/notify/acme\n$n", "POST /vpp/notify/acme\n$n",
  "POST /vpp/notify/acme\n{\"notificationId\": 5}", "GET /vpp/notify/acme", "POST /vpp/notify/nope\n$n" ]
--- more_headers eval
[ "Authorization: Bearer WRONG", "X-None: 1", "Authorization: Bearer NTOK-1", "Authorization: Bearer NTOK-1",
  "Authorization: Bearer NTOK-1", "Authorization: Bearer NTOK-1", "Authorization: Bearer NTOK-1" ]
--- error_code eval
[ 401, 401, 200, 200, 400, 405, 401 ]
--- json eval
[ { error => qr/bearer/ }, { error => qr/Bearer/ }, { duplicate => JSON::PP::false }, { duplicate => JSON::PP::true },
  { error => qr/notificationId/ }, { error => qr/POST/ }, { error => qr/bearer/ } ]
--- redis_check eval
[ [ "XLEN mdm:events", 1 ], [ "SMEMBERS mdm:vpp:syncnow", [ "acme" ] ],
  [ "TTL mdm:vpp:notif:N-1", sub { $_[0] > 86000 } ] ]
--- no_error_log
[error]



=== TEST 15: one bad install, one log line (info, with the reason), nothing else
--- redis_setup eval
sub { seed() }
--- request
POST /v1/vpp/install/acme
{"adam_id": 1, "serials": ["A"], "options": {"nonsense": 1}}
--- error_code: 400
--- grep_error_log eval
qr/mdm: [^\n]*/
--- grep_error_log_out eval
qr/\Amdm: API request "\/v1\/vpp\/install\/acme" answered 400: [^\n]*nonsense[^\n]*\n\z/



=== TEST 16: DELETE of a location with 2,500 apps and 2,500 serials: in bounded steps (several script calls), everything goes
--- redis_setup eval
sub {
    seed();
    redis('EVAL', q{for i = 1, 2500 do
                        redis.call('SADD', 'mdm:vpp:acme:adams', 'A' .. i)
                        redis.call('SADD', 'mdm:vpp:acme:asg:A' .. i, 'S' .. i)
                        redis.call('SADD', 'mdm:vpp:acme:serials', 'S' .. i)
                        redis.call('SADD', 'mdm:vpp:acme:sasg:S' .. i, 'A' .. i)
                    end}, 0);
    redis('CONFIG', 'RESETSTAT');
}
--- request
DELETE /v1/vpp/tokens/acme
--- error_code: 200
--- json eval
{ deleted => JSON::PP::true, assets => num(2503), serials => num(2502) }
--- redis_check eval
[ [ "KEYS mdm:vpp:acme*", [] ], [ "SISMEMBER mdm:vpp:names acme", 0 ],
  [ "INFO commandstats", qr/cmdstat_evalsha:calls=[5-9],/ ] ]



=== TEST 17: a DELETE cut short (the name forgotten, indexes left): DELETE again finishes it; then 404
--- redis_setup eval
sub {
    redis('FLUSHALL');
    # what the first step leaves when nginx stops before the next
    redis('SADD', 'mdm:vpp:gone:adams', '1', '2'); redis('SADD', 'mdm:vpp:gone:asg:1', 'S1');
    redis('SADD', 'mdm:vpp:gone:asg:2', 'S2'); redis('SADD', 'mdm:vpp:gone:new:serials', 'S3');
    redis('SADD', 'mdm:vpp:gone:new:sasg:S3', '1');
    redis('HSET', 'mdm:vpp:gone:deleting', 'assets', 5, 'serials', 0);
}
--- request eval
[ "DELETE /v1/vpp/tokens/gone", "DELETE /v1/vpp/tokens/gone" ]
--- error_code eval
[ 200, 404 ]
--- json eval
[ { deleted => JSON::PP::true, assets => num(7), serials => num(1) }, { error => qr/unknown VPP location/ } ]
--- redis_check eval
[ [ "KEYS mdm:vpp:gone*", [] ] ]
--- no_error_log
[error]
