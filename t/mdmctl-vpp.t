# mdmctl vpp ... (issue 17): every command against the block's nginx, with
# the location's state written to Redis as the worker leaves it (V1) and the
# worker's replies to token/sync jobs played by a forked BLPOP loop (V2);
# tables, --json, the expiry warning on stderr, exit codes 0, 2, 3, 4.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;
use t::MDMServers;
use t::MDMCtl;

use JSON::PP ();
use MIME::Base64 ();
use POSIX ();
use Test::More;

no_shuffle();
api_defaults('ctl-key');
mdm_defaults(config => "location /v1/ { mdm_api; mdm_api_key ctl-key; mdm_vpp_timeout 2s; }");

our @KIDS;
our $JOBQ = 'mdm:vpp:jobs';
our $REPLY = 'mdm:vpp:reply:';
our $JOBS = pki_dir() . '/ctl-vpp-jobs';

sub ctl_file {
    my ($name, $data) = @_;
    my $f = pki_dir() . "/ctl-vpp-$name";
    t::MDM::_spew($f, $data);
    return $f;
}

# answers one job like the worker would (t/MDMApi.pm)
sub worker_once { fake_worker(reply => $_[0]) }

sub t_vpp {
    redis('FLUSHALL');
    redis('SADD', 'mdm:vpp:names', 'acme');
    redis('SET', 'mdm:vpp:acme:token', 'x');
    redis('HSET', 'mdm:vpp:acme:status', 'org', 'Example Org', 'location', 'HQ',
          'token_expiry', time + 5 * 86400 + 60, 'stopped', 0, 'last_result', 'ok');
    redis('HSET', 'mdm:vpp:acme:assets', '361309726', '{"adamId":"361309726","productType":"App",'
          . '"pricingParam":"STDQ","assignedCount":1,"availableCount":9,"totalCount":10,"deviceAssignable":true}');
    redis('SADD', 'mdm:vpp:acme:asg:361309726', 'SER-1');
    redis('SADD', 'mdm:vpp:acme:sasg:SER-1', '361309726');
    redis('HSET', 'mdm:enr:{DEV-1}', 'type', 'Device', 'enabled', '1', 'serial_number', 'SER-1');
    redis('HSET', 'mdm:serials', 'SER-1', 'DEV-1');

    my ($rc, $out, $err) = ctl('vpp', 'tokens');
    is($rc, 0, 'vpp tokens: exit 0') or diag($err);
    like($out, qr/^acme\s+Example Org\s+HQ\s+\d{4}-\d\d-\d\d \S+\s+5\s+no\s+ok$/m, 'vpp tokens: a row');
    like($err, qr/VPP location acme: the content token expires in 5 days/, 'vpp tokens: the warning on stderr');
    ($rc, $out) = ctl('--json', 'vpp', 'tokens', 'acme');
    is(ctl_json($out)->{expires_in_days}, 5, 'vpp tokens NAME --json');
    ($rc, $out, $err) = ctl('vpp', 'tokens', 'nope');
    is($rc, 4, 'an unknown location: exit 4');
    ($rc) = ctl('vpp', 'tokens', 'a/b');
    is($rc, 2, 'a bad name: exit 2');

    my $tok = ctl_file('acme.vpptoken', MIME::Base64::encode_base64(
        '{"token":"T","expDate":"2099-01-01T00:00:00+0000","orgName":"Example Org"}', ''));
    worker_once(sub { { status => 200, body => { org => 'Example Org', location => 'HQ', force => $_[0]{force} } } });
    ($rc, $out, $err) = ctl('vpp', 'token-put', 'acme', $tok, '--force');
    is($rc, 0, 'vpp token-put: exit 0') or diag($err);
    like($out, qr/org\W+Example Org/, 'vpp token-put: the answer');
    like($out, qr/^force\s+yes$/m, 'vpp token-put --force: force sent');
    ($rc, $out, $err) = ctl('vpp', 'token-put', 'acme', ctl_file('bad', 'not a token'));
    is($rc, 4, 'vpp token-put of a bad file: exit 4 (the server refuses)');
    ($rc, $out, $err) = ctl('vpp', 'token-put', 'acme', $tok);
    is($rc, 3, 'vpp token-put, no worker: 504, exit 3');

    ($rc, $out, $err) = ctl('vpp', 'config', 'acme', '--base-url', 'http://127.0.0.1:9/mdm/v2');
    is($rc, 0, 'vpp config --base-url: exit 0') or diag($err);
    ($rc, $out, $err) = ctl('vpp', 'config', 'acme', '--notify-url', 'https://mdm.example.com/vpp/notify/acme');
    ($rc, $out) = ctl('--json', 'vpp', 'config', 'acme');
    is_deeply(ctl_json($out), { name => 'acme', base_url => 'http://127.0.0.1:9/mdm/v2',
                                notify_url => 'https://mdm.example.com/vpp/notify/acme',
                                default => JSON::PP::false }, 'vpp config: one option keeps the other');

    ($rc, $out, $err) = ctl('vpp', 'assets', 'acme');
    is($rc, 0, 'vpp assets: exit 0') or diag($err);
    like($out, qr/^361309726\s+App\s+STDQ\s+1\s+9\s+10\s+yes$/m, 'vpp assets: a row');
    ($rc, $out) = ctl('vpp', 'assignments', 'acme', '--serial', 'SER-1');
    is($out, "361309726\n", 'vpp assignments --serial');
    ($rc, $out) = ctl('vpp', 'assignments', 'acme', '--adam-id', '361309726');
    is($out, "SER-1\n", 'vpp assignments --adam-id');
    ($rc) = ctl('vpp', 'assignments', 'acme');
    is($rc, 2, 'vpp assignments without a filter: exit 2');

    redis('DEL', 'mdm:vpp:jobs');    # the token job no worker took
    worker_once(sub { { status => 200, body => { assets => 1 } } });
    ($rc, $out, $err) = ctl('vpp', 'sync', 'acme');
    is($rc, 0, 'vpp sync: exit 0') or diag($err);

    ($rc, $out, $err) = ctl('vpp', 'install', 'acme', '361309726', 'SER-1', 'SER-2', '--management-flags', '1');
    is($rc, 0, 'vpp install: exit 0') or diag($err);
    my ($iid) = $out =~ /^install ([0-9a-f]{32}): 2 devices \(1 enrolled, 1 not\)/m;
    ok($iid, 'vpp install: the install id') or diag($out);
    ($rc, $out, $err) = ctl('vpp', 'install-status', 'acme', $iid);
    is($rc, 0, 'vpp install-status: exit 0') or diag($err);
    like($out, qr/^install \Q$iid\E of app 361309726: pending; 2 devices, 0 associated, 0 queued, 0 failed$/m,
         'vpp install-status: the summary');
    like($out, qr/^SER-1\s+DEV-1\s+pending\b/m, 'vpp install-status: a device');
    like($out, qr/^SER-2\s+no_enrollment\b/m, 'vpp install-status: one not enrolled');
    ($rc) = ctl('vpp', 'install', 'acme', '12x', 'SER-1');
    is($rc, 2, 'vpp install, a bad adam id: exit 2');
    ($rc, $out, $err) = ctl('vpp', 'install', 'acme', '361309726', 'NOPE', '--by-id');
    is($rc, 4, 'vpp install --by-id, an unknown enrollment: exit 4');
    ($rc, $out, $err) = ctl('vpp', 'remove', 'acme', '361309726', 'com.example.app', 'SER-1');
    is($rc, 0, 'vpp remove: exit 0') or diag($err);
    like($out, qr/^removal [0-9a-f]{32}: 1 devices/m, 'vpp remove: the removal');

    ($rc, $out, $err) = ctl('vpp', 'token-delete', 'acme');
    is($rc, 0, 'vpp token-delete: exit 0') or diag($err);
    is(redis('EXISTS', 'mdm:vpp:acme:status'), 0, 'the location is gone');
    waitpid($_, 0) for @KIDS;
    @KIDS = ();
}

{
    no strict 'refs';
    *{"Test::Base::Filter::t_vpp"} = \&t_vpp;
}

run_tests();

__DATA__

=== TEST 1: mdmctl vpp: tokens, token-put, config, assets, assignments, sync, install, install-status, remove, token-delete
--- request
GET /v1/vpp/tokens
--- after_each eval
\&::t_vpp
