import { ResetPasswordView } from '@/components/EmailViews';

// The token is in the query string: never send it along as a Referer.
export const metadata = { title: 'Choose a new password · Hearth', referrer: 'no-referrer' };

export default function ResetPasswordPage() {
  return <ResetPasswordView />;
}
