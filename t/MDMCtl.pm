# Shared by the mdmctl tests (t/mdmctl*.t): running the CLI against the
# block's nginx, a throw-away vendor PKI, the mdmcert.download stand-in.
# Load it after t::MDM, t::MDMApi and t::MDMServers:
#
#     my ($rc, $out, $err) = ctl('devices', '--json');    # this nginx
#     my ($rc, $out, $err) = ctl_raw([ENV...], ARGS...);  # no --server
#     my $v = vendor_pki();   # { root, int, vendor, vendor_key, chain, dir }
#     my $m = start_mdmcert($v, 'api-key');               # t/servers/mdmcert.pl
#
# mdmctl is $ENV{MDMCTL}, else workers/mdmctl (./build.sh makes it). HOME
# and XDG_CONFIG_HOME point into a temporary directory, so no test reads or
# writes the real ~/.config/mdmctl; MDM_* and MDMCERT_* are cleared.

package main;

use strict;
use warnings;

use File::Temp qw(tempdir);
use JSON::PP ();

our $CtlBin = $ENV{MDMCTL} // 'workers/mdmctl';
die "mdmctl: $CtlBin is not built (./build.sh, or make -C workers mdmctl)\n"
    unless -x $CtlBin;
our $CtlHome = tempdir('mdmctl-home-XXXXXX', TMPDIR => 1,
                       CLEANUP => !$ENV{MDM_TEST_KEEP});
$ENV{HOME} = $CtlHome;
$ENV{XDG_CONFIG_HOME} = "$CtlHome/.config";
delete $ENV{$_} for grep { /^(MDM_SERVER|MDM_API_KEY|MDMCERT_|MDMCTL_)/ } keys %ENV;

# the API key file of api_defaults($::KEY)
sub ctl_key_file {
    my $f = "$CtlHome/api.key";
    t::MDM::_spew($f, "$::KEY\n");
    return $f;
}

# mdmctl against this block's nginx -> (exit status, stdout, stderr)
sub ctl {
    return t::MDM::run_cmd($CtlBin, '--server',
                           'http://127.0.0.1:' . server_port(),
                           '--api-key-file', ctl_key_file(), @_);
}

# mdmctl with only the arguments given (and an environment to add)
sub ctl_raw {
    my ($env, @args) = @_;
    local %ENV = (%ENV, %{ $env // {} });
    return t::MDM::run_cmd($CtlBin, @args);
}

# the JSON of a --json run, or undef
sub ctl_json {
    my ($out) = @_;
    return eval { JSON::PP->new->decode($out) };
}

# A vendor PKI made now: a root and an intermediate standing in for
# Apple's, the MDM vendor certificate they issue and its key.
my $Vendor;

sub vendor_pki {
    return $Vendor if $Vendor;
    my $d = tempdir('mdmctl-vendor-XXXXXX', TMPDIR => 1,
                    CLEANUP => !$ENV{MDM_TEST_KEEP});
    my $run = \&t::MDM::_run;
    $run->('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
           '-keyout', "$d/root.key", '-out', "$d/root.pem", '-days', '30',
           '-subj', '/O=Apple Inc. (test)/CN=Apple Root CA (test)');
    $run->('openssl', 'req', '-new', '-newkey', 'rsa:2048', '-nodes',
           '-keyout', "$d/int.key", '-out', "$d/int.csr",
           '-subj', '/O=Apple Inc. (test)/CN=Apple WWDR CA (test)');
    t::MDM::_spew("$d/ca.ext", "basicConstraints=critical,CA:TRUE\n"
                  . "keyUsage=critical,keyCertSign,cRLSign\n");
    $run->('openssl', 'x509', '-req', '-in', "$d/int.csr", '-CA',
           "$d/root.pem", '-CAkey', "$d/root.key", '-set_serial', '2',
           '-days', '30', '-extfile', "$d/ca.ext", '-out', "$d/int.pem");
    $run->('openssl', 'req', '-new', '-newkey', 'rsa:2048', '-nodes',
           '-keyout', "$d/vendor.key", '-out', "$d/vendor.csr",
           '-subj', '/O=Vendor (test)/CN=MDM Vendor: Vendor (test)');
    $run->('openssl', 'x509', '-req', '-in', "$d/vendor.csr", '-CA',
           "$d/int.pem", '-CAkey', "$d/int.key", '-set_serial', '3',
           '-days', '30', '-out', "$d/vendor.pem");
    $run->('openssl', 'x509', '-in', "$d/vendor.pem", '-pubkey', '-noout',
           '-out', "$d/vendor.pub");
    # the intermediate in DER: mdmctl takes either
    $run->('openssl', 'x509', '-in', "$d/int.pem", '-outform', 'DER',
           '-out', "$d/int.der");
    t::MDM::_spew("$d/chain.pem", join '', map { t::MDM::_slurp("$d/$_.pem") }
                                            qw(vendor int root));
    return $Vendor = {
        dir => $d, root => "$d/root.pem", int => "$d/int.pem",
        int_der => "$d/int.der", vendor => "$d/vendor.pem",
        vendor_key => "$d/vendor.key", vendor_pub => "$d/vendor.pub",
        chain => "$d/chain.pem",
    };
}

# t/servers/mdmcert.pl with this vendor and API key; {url, outbox, ...}
sub start_mdmcert {
    my ($v, $key) = @_;
    my $outbox = tempdir('mdmcert-outbox-XXXXXX', TMPDIR => 1,
                         CLEANUP => !$ENV{MDM_TEST_KEEP});
    my $srv = t::MDMServers::_start('mdmcert', {}, [
        '--vendor-cert', $v->{vendor}, '--vendor-key', $v->{vendor_key},
        '--chain', $v->{chain}, '--outbox', $outbox, '--api-key', $key ]);
    $srv->{url} = "http://127.0.0.1:$srv->{port}/api/v1/signrequest";
    $srv->{outbox} = $outbox;
    return $srv;
}

# the plist of a request file for the portal (base64 of an XML plist) as
# { key => string }; dies if it is not one
sub portal_request {
    my ($file) = @_;
    my $b64 = t::MDM::_slurp($file) // die "no $file\n";
    die "$file is not one line of base64\n"
        unless $b64 =~ m{^[A-Za-z0-9+/]+={0,2}\n?$};
    my $xml = MIME::Base64::decode_base64($b64);
    die "$file: not a plist\n" unless $xml =~ m{^<\?xml.*<plist version="1.0">\s*<dict>(.*)</dict>\s*</plist>\s*$}s;
    my $dict = $1;
    my %p;
    while ($dict =~ m{<key>([^<]*)</key>\s*<string>([^<]*)</string>}g) {
        die "$file: $1 twice\n" if exists $p{$1};
        $p{$1} = $2;
    }
    (my $rest = $dict) =~ s{<key>[^<]*</key>\s*<string>[^<]*</string>}{}g;
    die "$file: more than key/string pairs: $rest\n" if $rest =~ /\S/;
    return \%p;
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"}
        for qw(ctl ctl_raw ctl_json vendor_pki start_mdmcert portal_request);
}

1;
