import { VerifyEmailView } from '@/components/EmailViews';

// The token is in the query string: never send it along as a Referer.
export const metadata = { title: 'Verify your email · Hearth', referrer: 'no-referrer' };

export default function VerifyEmailPage() {
  return <VerifyEmailView />;
}
